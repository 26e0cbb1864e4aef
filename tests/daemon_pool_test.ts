/**
 * Domains on pool volumes through the daemon: the volume resolves to its image when the
 * domain starts, the pool reports the running domain as its user and refuses to delete
 * the volume under it, and a missing volume is a 400 that names the field.
 */

import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, TestDaemon } from "./daemon_support.ts";
import type { DomainStats, VolumeInfo } from "../manager/api_types.ts";

kvmTest(
  "daemon: a domain runs on a pool volume, which is then in use and cannot be deleted",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
      await api.post("/v1/pools/default/build");
      await api.post("/v1/pools/default/start");
      const volume = await api.post<VolumeInfo>("/v1/pools/default/volumes", {
        name: "root",
        size: "1M",
        format: "raw",
      });
      await daemon.run(domainGuest("vm", { disks: [{ volume: "root" }] }));
      const stats = await api.get<DomainStats>("/v1/domains/vm/stats");
      assert.equal(stats.disks[0].path, volume.path);
      assert.equal((await api.get<VolumeInfo>("/v1/pools/default/volumes/root")).usedBy, "vm");
      await assert.rejects(() => api.delete("/v1/pools/default/volumes/root"), {
        status: 409,
        message: "Volume 'root' is in use by domain 'vm'; shut it down first",
      });
      await assert.rejects(
        () => daemon.run(domainGuest("other", { disks: [{ volume: "nope" }] })),
        (error: Error & { status?: number }) =>
          error.status === 400 && error.message.startsWith("disks[0].volume: "),
      );
      // Refused before anything was stored.
      await assert.rejects(() => daemon.info("other"), { status: 404 });
      await api.post("/v1/domains/vm/destroy");
      assert.equal((await api.get<VolumeInfo>("/v1/pools/default/volumes/root")).usedBy, undefined);
      await api.delete("/v1/pools/default/volumes/root");
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);
