/**
 * Save, restore, snapshots and clones through a real daemon, where no VMM has to run:
 * request validation (400), unknown snapshots (404), name clashes (409), hostile and
 * mismatched state files refused before any VMM, a failed restore that leaves nothing
 * defined, and the disk side of snapshots and clones on a shut-off domain (rolled back
 * and judged with qemu-img compare).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiClientError } from "../manager/api_client.ts";
import type { DomainInfo, SnapshotInfo, VolumeInfo } from "../manager/api_types.ts";
import { writeSavedDomain } from "../manager/snapshots/saved_domain.ts";
import type { StateDocument } from "../vmm/snapshot/state_document.ts";
import { writeStateFile } from "../vmm/snapshot/state_file.ts";
import { openImage } from "../storage/image.ts";
import { TestDaemon } from "./daemon_support.ts";

const hasQemuImg = await new Deno.Command("qemu-img", { args: ["--version"], stdout: "null" })
  .output().then((out) => out.success, () => false);

async function refused(work: Promise<unknown>, status: number, pattern: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof ApiClientError, String(error));
    assert.equal(error.status, status, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** A well-formed state file (one page of RAM in a memory file beside it). */
async function stateFile(path: string, edit: (d: StateDocument) => void = () => {}) {
  const document: StateDocument = {
    denovisorVersion: "test",
    createdAt: "2026-01-01T00:00:00.000Z",
    purpose: "save",
    config: { vcpus: 1, memoryBytes: 4096 },
    memory: {
      storage: "file",
      file: `${path.split("/").pop()}.mem`,
      pageSize: 4096,
      ranges: [{ guestAddress: 0, size: 4096, fileOffset: 0 }],
      fileSize: 4096,
    },
    sections: [{ id: "vm", kind: "vm", version: 1, state: {} }],
  };
  edit(document);
  await Deno.writeFile(`${path}.mem`, new Uint8Array(4096));
  await writeStateFile(path, document);
}

async function setUpPool(daemon: TestDaemon): Promise<void> {
  const api = daemon.client;
  await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
  await api.post("/v1/pools/default/build");
  await api.post("/v1/pools/default/start");
}

async function compare(a: string, b: string): Promise<boolean> {
  const { code, stderr } = await new Deno.Command("qemu-img", {
    args: ["compare", "-U", a, b],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(code === 0 || code === 1, new TextDecoder().decode(stderr));
  return code === 0;
}

Deno.test("daemon: save and restore refuse bad requests and bad state files before any VMM", async () => {
  const daemon = await TestDaemon.start();
  // The restore that passes every check starts a VMM that cannot restore this state.
  daemon.allowUncaughtErrors = true;
  try {
    const api = daemon.client;
    const dir = join(daemon.dir, "saves");
    await Deno.mkdir(dir);
    await api.post("/v1/domains", { name: "web", boot: { demo: true } });
    await refused(api.post("/v1/domains/nope/save", { file: `${dir}/x` }), 404, /No domain/);
    await refused(api.post("/v1/domains/web/save", { file: "x.state" }), 400, /absolute path/);
    await refused(
      api.post("/v1/domains/web/save", { file: `${dir}/x`, now: true }),
      400,
      /now: unknown field/,
    );
    await refused(
      api.post("/v1/domains/web/save", { file: `${dir}/no/such/x` }),
      400,
      /does not exist/,
    );
    await refused(api.post("/v1/domains/web/save", { file: `${dir}/x` }), 409, /is shutoff/);

    await refused(api.post("/v1/restore", { file: `${dir}/missing` }), 400, /Cannot open/);
    await refused(api.post("/v1/restore", { file: `${dir}/x`, paused: "yes" }), 400, /paused/);
    const state = `${dir}/web.state`;
    await stateFile(state);
    const bytes = await Deno.readFile(state);
    bytes[40] ^= 0x01;
    await Deno.writeFile(`${dir}/flipped.state`, bytes);
    await refused(api.post("/v1/restore", { file: `${dir}/flipped.state` }), 400, /checksum/);
    await stateFile(`${dir}/hostile.state`, (d) => {
      d.sections[0].id = "Not An Id";
    });
    await refused(
      api.post("/v1/restore", { file: `${dir}/hostile.state` }),
      400,
      /document\.sections\[0\]\.id/,
    );
    await refused(api.post("/v1/restore", { file: state }), 400, /domain\.json: missing/);

    const disk = `${dir}/disk.raw`;
    await Deno.writeFile(disk, new Uint8Array(65536));
    const saved = {
      savedAt: "2026-01-01T00:00:01.000Z",
      stateCreatedAt: "2026-01-01T00:00:00.000Z",
      persistent: true,
      definition: { name: "saved", boot: { demo: true as const }, disks: [{ path: disk }] },
      disks: [{
        id: "vda",
        path: disk,
        identity: `${Deno.statSync(disk).dev}:${Deno.statSync(disk).ino}`,
        virtualSize: 65536,
      }],
    };
    await writeSavedDomain(state, { ...saved, stateCreatedAt: "2025-01-01T00:00:00.000Z" });
    await refused(api.post("/v1/restore", { file: state }), 400, /belongs to a state taken/);
    await Deno.remove(`${state}.domain.json`);
    await writeSavedDomain(state, saved);
    await Deno.truncate(disk, 131072);
    await refused(
      api.post("/v1/restore", { file: state }),
      409,
      /disks changed since the save: vda .* 65536 bytes at the save, now 131072.*--force/,
    );
    // Forced, the VMM is started and fails (no KVM here, or a state it refuses): the
    // definition made for the restore is taken back.
    await assert.rejects(api.post("/v1/restore", { file: state, force: true }));
    await refused(api.get("/v1/domains/saved"), 404, /No domain named 'saved'/);
    assert.ok(!(await Deno.stat(`${daemon.dir}/domains/saved.json`).catch(() => undefined)));
  } finally {
    await daemon.cleanup();
  }
});

Deno.test({
  name: "daemon: snapshots of a shut-off domain roll its disk back and merge on delete",
  ignore: !hasQemuImg,
  fn: async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      await setUpPool(daemon);
      const volume = await api.post<VolumeInfo>("/v1/pools/default/volumes", {
        name: "root",
        size: "1M",
        format: "raw",
      });
      await api.post("/v1/domains", {
        name: "web",
        boot: { demo: true },
        disks: [{ volume: "root" }],
      });
      const write = (byte: number) => {
        const image = openImage(volume.path);
        try {
          image.write(65536, [new Uint8Array(4096).fill(byte)]);
          image.flush();
        } finally {
          image.close();
        }
      };
      write(0x11);
      const before = join(daemon.dir, "before.raw");
      await Deno.copyFile(volume.path, before);

      await refused(api.post("/v1/domains/web/snapshots", { name: "../x" }), 400, /not a valid/);
      const taken = await api.post<SnapshotInfo>("/v1/domains/web/snapshots", {
        name: "s1",
        description: "first",
      });
      assert.equal(taken.memory, false);
      assert.equal(taken.domainState, "shutoff");
      assert.deepEqual(taken.disks, [{ id: "vda", pool: "default", volume: "root" }]);
      await refused(api.post("/v1/domains/web/snapshots", { name: "s1" }), 409, /already has/);
      await refused(api.get("/v1/domains/web/snapshots/nope"), 404, /no snapshot 'nope'/);
      await refused(api.post("/v1/domains/web/snapshots/nope/revert"), 404, /no snapshot/);
      const listed = await api.get<SnapshotInfo[]>("/v1/domains/web/snapshots");
      assert.deepEqual(listed.map((s) => [s.name, s.current, s.description]), [
        ["s1", true, "first"],
      ]);

      for (let round = 0; round < 3; round++) {
        write(0x22 + round);
        assert.equal(await compare(before, volume.path), false, "the write changed the disk");
        const info = await api.post<DomainInfo>("/v1/domains/web/snapshots/s1/revert");
        assert.equal(info.state, "shutoff");
        assert.equal(await compare(before, volume.path), true, `round ${round}: rolled back`);
      }
      write(0x33);
      const after = join(daemon.dir, "after.raw");
      await new Deno.Command("qemu-img", {
        args: ["convert", "-U", "-O", "raw", volume.path, after],
      }).output();
      await api.delete("/v1/domains/web/snapshots/s1");
      await refused(api.get("/v1/domains/web/snapshots/s1"), 404, /no snapshot/);
      const merged = await api.get<VolumeInfo>("/v1/pools/default/volumes/root");
      assert.deepEqual(merged.snapshots, []);
      assert.equal(await compare(after, volume.path), true, "delete kept the latest state");

      // A snapshot whose disk snapshot went (deleted through the pool) is refused whole.
      await api.post("/v1/domains/web/snapshots", { name: "s3" });
      await api.post("/v1/pools/default/volumes/root/delete-snapshot", { snapshot: "s3" });
      await refused(
        api.post("/v1/domains/web/snapshots/s3/revert"),
        409,
        /volume 'root' of pool 'default' \(disk vda\) no longer has a snapshot 's3'/,
      );

      // Snapshots outlive an undefine, but a new domain of that name does not inherit them.
      await api.post("/v1/domains/web/snapshots", { name: "s2" });
      await api.delete("/v1/domains/web");
      await api.post("/v1/domains", { name: "web", boot: { demo: true } });
      assert.deepEqual(await api.get("/v1/domains/web/snapshots"), []);
      await refused(api.get("/v1/domains/web/snapshots/s2"), 404, /belongs to a former domain/);
      await refused(
        api.post("/v1/domains/web/snapshots/s2/revert"),
        404,
        /belongs to a former domain/,
      );
    } finally {
      await daemon.cleanup();
    }
  },
});

Deno.test("daemon: clones of a shut-off domain get new identities and linked disks", async () => {
  const daemon = await TestDaemon.start();
  try {
    const api = daemon.client;
    await setUpPool(daemon);
    await api.post("/v1/pools/default/volumes", { name: "root", size: "1M", format: "raw" });
    const source = await api.post<DomainInfo>("/v1/domains", {
      name: "web",
      boot: { demo: true },
      disks: [{ volume: "root" }],
      nics: [{ tap: "tap-web" }],
    });
    await refused(api.post("/v1/domains/web/clone", { name: "c", count: 0 }), 400, /count/);
    await refused(api.post("/v1/domains/web/clone", { name: "web" }), 409, /exists/);
    await refused(
      api.post("/v1/domains/web/clone", { name: "c", snapshot: "x" }),
      404,
      /no snapshot/,
    );
    const clones = await api.post<DomainInfo[]>("/v1/domains/web/clone", { name: "c", count: 2 });
    assert.deepEqual(clones.map((c) => [c.name, c.state]), [["c-1", "shutoff"], [
      "c-2",
      "shutoff",
    ]]);
    const macs = new Set([source, ...clones].map((d) => d.definition.nics![0].mac));
    const uuids = new Set([source, ...clones].map((d) => d.uuid));
    assert.equal(macs.size, 3);
    assert.equal(uuids.size, 3);
    assert.equal(clones[0].definition.nics![0].tap, "auto");
    assert.deepEqual(clones.map((c) => c.definition.disks![0].volume), ["c-1-vda", "c-2-vda"]);
    const base = await api.get<VolumeInfo>("/v1/pools/default/volumes/c-base-vda");
    const linked = await api.get<VolumeInfo>("/v1/pools/default/volumes/c-1-vda");
    assert.equal(linked.backingChain[0], base.path);
    // One clone is a copy of its own.
    const [single] = await api.post<DomainInfo[]>("/v1/domains/web/clone", { name: "solo" });
    assert.equal(single.definition.disks![0].volume, "solo-vda");
    assert.deepEqual(
      (await api.get<VolumeInfo>("/v1/pools/default/volumes/solo-vda")).backingChain,
      [],
    );
  } finally {
    await daemon.cleanup();
  }
});
