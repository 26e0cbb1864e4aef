/**
 * GET /vm/stats and PUT /vm/balloon of `denovisor vmm`, against a guest doing real I/O.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { withVmm } from "./vmm_support.ts";
import { attachConsole } from "../vmm/vmm_client.ts";
import { ApiClient, ApiClientError } from "../manager/api_client.ts";

const MAC = "52:54:00:aa:bb:01";

kvmTest(
  "stats: vCPU time, memory, and disk and NIC counters after the guest's disk I/O",
  async () => {
    await withVmm((dir) => {
      const image = join(dir, "disk.img");
      Deno.writeFileSync(image, new Uint8Array(1024 * 1024));
      return {
        disks: [{ path: image, format: "raw", readOnly: false, transport: "pci", serial: "d0" }],
        nics: [{ tap: "auto", mac: MAC, transport: "pci" }],
      };
    }, async (vmm) => {
      await vmm.waitLog(/domain guest up/);
      const { conn } = await attachConsole(vmm.dir, "rw");
      try {
        await conn.write(new TextEncoder().encode("disk\n"));
        await vmm.waitLog(/disk: (ok|failed.*)/);
      } finally {
        conn.close();
      }
      assert.match(vmm.log(), /disk: ok/);
      const stats = await vmm.client.stats();
      assert.equal(stats.name, "t");
      assert.equal(stats.state, "running");
      assert.equal(stats.vcpus.length, 1);
      const cpuTimeNs = stats.vcpus[0].cpuTimeNs ?? 0; // vCPU 0 has a thread of its own
      assert.ok(cpuTimeNs > 0, `vCPU time ${stats.vcpus[0].cpuTimeNs}`);
      assert.equal(stats.memory.guestBytes, 64 * 1024 * 1024);
      assert.equal(stats.memory.balloonBytes, 0);
      assert.equal(stats.memory.availableBytes, stats.memory.guestBytes);
      assert.ok(stats.memory.rssBytes > 10 * 1024 * 1024);
      const [disk] = stats.disks;
      assert.equal(disk.name, "vda");
      assert.equal(disk.path, vmm.config.disks[0].path);
      assert.equal(disk.readRequests, 1);
      assert.equal(disk.readBytes, 4096);
      assert.equal(disk.writeRequests, 1);
      assert.equal(disk.writeBytes, 512);
      assert.equal(disk.errors, 0);
      assert.equal(disk.throttled, 0); // no rate limit
      const [nic] = stats.nics;
      assert.equal(nic.name, "net0");
      assert.equal(nic.mac, MAC);
      assert.match(nic.tap, /^dv\d+$/);
      assert.equal(nic.txFrames, 0);

      // Counters carry over a reboot (the devices are rebuilt).
      await vmm.client.reboot();
      const after = await vmm.client.stats();
      assert.equal(after.disks[0].readRequests, 1);
      assert.ok((after.vcpus[0].cpuTimeNs ?? 0) >= cpuTimeNs, "a counter never goes back");
    });
  },
  120_000,
);

kvmTest(
  "stats: a disk's ops rate limit holds the guest's second request back and counts it",
  async () => {
    await withVmm((dir) => {
      const image = join(dir, "disk.img");
      Deno.writeFileSync(image, new Uint8Array(1024 * 1024));
      // One operation, refilled over 4 s: the guest's read takes it, its write (sent right
      // after the read completes) must wait for the refill, well within the guest's 10 s.
      return {
        disks: [{
          path: image,
          format: "raw",
          readOnly: false,
          transport: "pci",
          rateLimit: { ops: { size: 1, refillTimeMs: 4000 } },
        }],
      };
    }, async (vmm) => {
      await vmm.waitLog(/domain guest up/);
      const { conn } = await attachConsole(vmm.dir, "rw");
      try {
        await conn.write(new TextEncoder().encode("disk\n"));
        await vmm.waitLog(/disk: (ok|failed.*)/, { timeoutMs: 60_000 });
      } finally {
        conn.close();
      }
      assert.match(vmm.log(), /disk: ok/);
      const [disk] = (await vmm.client.stats()).disks;
      assert.equal(disk.readRequests, 1);
      assert.equal(disk.writeRequests, 1);
      assert.ok(disk.throttled >= 1, `throttled ${disk.throttled}: the limit held nothing back`);
      assert.equal(disk.errors, 0);
    });
  },
  120_000,
);

kvmTest(
  "balloon: 409 without a balloon device; with one, the target is checked and set",
  async () => {
    await withVmm({}, async (vmm) => {
      await assert.rejects(
        vmm.client.setBalloon(1024 * 1024),
        (e) => e instanceof ApiClientError && e.status === 409 && /no balloon/.test(e.message),
      );
    });
    await withVmm({ balloon: true }, async (vmm) => {
      const status = await vmm.client.setBalloon(16 * 1024 * 1024);
      assert.equal(status.state, "running");
      await vmm.waitLog(/balloon target set to 16777216 bytes/);
      await assert.rejects(
        vmm.client.setBalloon(1024 * 1024 * 1024),
        (e) => e instanceof ApiClientError && e.status === 400 && /targetBytes/.test(e.message),
      );
    });
  },
  120_000,
);

kvmTest("the control API names unknown paths and wrong methods", async () => {
  await withVmm({}, async (vmm) => {
    const api = new ApiClient(`${vmm.dir}/vmm.sock`);
    await assert.rejects(
      api.get("/vm/nothing"),
      (e) => e instanceof ApiClientError && e.status === 404,
    );
    await assert.rejects(
      api.get("/vm/pause"),
      (e) =>
        e instanceof ApiClientError && e.status === 405 && /GET is not allowed/.test(e.message),
    );
  });
}, 120_000);
