/**
 * The daemon's side of save, restore, snapshots and clones with a stand-in VMM
 * (tests/fixtures/save_vmm.ts: a counter for a guest, real state files), so that every
 * step the daemon takes around a VMM runs without KVM: a save then a restore carries the
 * count on, a checkpoint keeps the domain running, a failed save leaves no file and the
 * domain running, a snapshot of a running domain restarts it from the snapshot's state
 * and revert does again, a snapshot is deleted under a running domain, clones restore
 * the source's state, and a restore whose VMM fails leaves nothing defined.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiClientError } from "../manager/api_client.ts";
import type { DomainInfo, SaveResult, SnapshotInfo, VolumeInfo } from "../manager/api_types.ts";
import { TestDaemon } from "./daemon_support.ts";

const SAVE_VMM = new URL("./fixtures/save_vmm.ts", import.meta.url).pathname;

async function start(): Promise<TestDaemon> {
  return await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", SAVE_VMM]),
  });
}

async function log(daemon: TestDaemon, name: string): Promise<string> {
  return await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=1000`)).text();
}

/** The numbers of `save-vmm: <what> count=N` lines in the log of `name`. */
async function counts(daemon: TestDaemon, name: string, what: string): Promise<number[]> {
  const text = await log(daemon, name);
  return [...text.matchAll(new RegExp(`save-vmm: ${what} count=(\\d+)`, "g"))].map((m) =>
    Number(m[1])
  );
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function withPool(daemon: TestDaemon): Promise<VolumeInfo> {
  const api = daemon.client;
  await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
  await api.post("/v1/pools/default/build");
  await api.post("/v1/pools/default/start");
  return await api.post<VolumeInfo>("/v1/pools/default/volumes", {
    name: "root",
    size: "1M",
    format: "raw",
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("daemon with a stand-in VMM: save, checkpoint, failed save and restore", async () => {
  const daemon = await start();
  try {
    const api = daemon.client;
    await daemon.run({ name: "web", boot: { demo: true } });
    await sleep(200);
    const dir = join(daemon.dir, "saves");
    await Deno.mkdir(dir);

    // A save that fails midway: no file, the domain runs on.
    await assert.rejects(
      api.post("/v1/domains/web/save", { file: `${dir}/fail.state` }),
      (error: ApiClientError) => error.status === 503 && /No space left/.test(error.message),
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    assert.equal((await daemon.info("web")).state, "running");

    const checkpoint = await api.post<SaveResult>("/v1/domains/web/save", {
      file: `${dir}/check.state`,
      keep: true,
    });
    assert.equal(checkpoint.kept, true);
    assert.equal((await daemon.info("web")).state, "running");
    await refusedExisting(daemon, `${dir}/check.state`);

    const saved = await api.post<SaveResult>("/v1/domains/web/save", { file: `${dir}/web.state` });
    assert.equal(saved.kept, false);
    assert.equal(saved.definitionFile, `${dir}/web.state.domain.json`);
    for (const file of ["web.state", "web.state.mem", "web.state.domain.json"]) {
      assert.ok(await exists(join(dir, file)), file);
    }
    assert.equal((await daemon.info("web")).state, "shutoff");
    const [, last] = await counts(daemon, "web", "saved");
    assert.ok(last > 0);
    // Undefined: restore must define it again (and it starts with a new log).
    await api.delete("/v1/domains/web");

    // Restore defines the domain again and the count goes on from the save.
    const restored = await api.post<DomainInfo>("/v1/restore", {
      file: `${dir}/web.state`,
      paused: true,
    });
    assert.equal(restored.name, "web");
    assert.equal(restored.state, "paused");
    assert.equal(restored.persistent, true);
    assert.deepEqual(await counts(daemon, "web", "restored"), [last]);
    await refused(api.post("/v1/restore", { file: `${dir}/web.state` }), 409, /is paused/);

    // Under a new name: a new uuid, the same state.
    const copy = await api.post<DomainInfo>("/v1/restore", {
      file: `${dir}/web.state`,
      name: "web-copy",
    });
    assert.equal(copy.state, "running");
    assert.notEqual(copy.uuid, restored.uuid);
    assert.deepEqual(await counts(daemon, "web-copy", "restored"), [last]);

    // Checked before any VMM: a missing memory file, a definition file of another state.
    await Deno.remove(`${dir}/check.state.mem`);
    await refused(api.post("/v1/restore", { file: `${dir}/check.state` }), 400, /memory file/);
    await Deno.rename(`${dir}/web.state.domain.json`, `${dir}/check.state.domain.json`);
    await Deno.writeFile(`${dir}/check.state.mem`, new Uint8Array(4096));
    await refused(api.post("/v1/restore", { file: `${dir}/check.state` }), 400, /belongs to/);
    await Deno.rename(`${dir}/check.state.domain.json`, `${dir}/web.state.domain.json`);

    // The VMM refuses the state: its start fails and the definition made for it goes again.
    await api.post("/v1/domains/web/destroy");
    await api.delete("/v1/domains/web");
    for (const suffix of ["", ".mem"]) {
      await Deno.copyFile(`${dir}/web.state${suffix}`, `${dir}/refuse.state${suffix}`);
    }
    const definitionFile = JSON.parse(await Deno.readTextFile(`${dir}/web.state.domain.json`));
    await Deno.writeTextFile(
      `${dir}/refuse.state.domain.json`,
      JSON.stringify({ ...definitionFile, stateFile: "refuse.state" }),
    );
    await refused(
      api.post("/v1/restore", { file: `${dir}/refuse.state` }),
      500,
      /ended during start-up/,
    );
    await refused(api.get("/v1/domains/web"), 404, /No domain named 'web'/);
    assert.ok(!(await exists(join(daemon.dir, "domains", "web.json"))));
    await api.post("/v1/domains/web-copy/destroy");
  } finally {
    await daemon.cleanup();
  }
});

async function refused(work: Promise<unknown>, status: number, pattern: RegExp) {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof ApiClientError, String(error));
    assert.equal(error.status, status, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

async function refusedExisting(daemon: TestDaemon, file: string) {
  await refused(
    daemon.client.post("/v1/domains/web/save", { file }),
    409,
    /exists; remove it or save to another file/,
  );
}

Deno.test("daemon with a stand-in VMM: snapshots of a running domain, revert and delete", async () => {
  const daemon = await start();
  try {
    const api = daemon.client;
    await withPool(daemon);
    await daemon.run({ name: "web", boot: { demo: true }, disks: [{ volume: "root" }] });
    await sleep(200);
    const s1 = await api.post<SnapshotInfo>("/v1/domains/web/snapshots", { name: "s1" });
    assert.equal(s1.memory, true);
    assert.equal(s1.domainState, "running");
    assert.equal((await daemon.info("web")).state, "running");
    const stateFile = join(daemon.dir, "snapshots", "web", "s1", "state");
    assert.ok(await exists(stateFile) && await exists(`${stateFile}.mem`));
    const [atS1] = await counts(daemon, "web", "saved");
    assert.deepEqual(await counts(daemon, "web", "restored"), [atS1]);
    assert.deepEqual(
      (await api.get<VolumeInfo>("/v1/pools/default/volumes/root")).snapshots,
      ["s1"],
    );

    await api.post("/v1/domains/web/pause");
    const s2 = await api.post<SnapshotInfo>("/v1/domains/web/snapshots", {
      name: "s2",
      diskOnly: true,
    });
    assert.equal(s2.memory, false);
    assert.equal(s2.parent, "s1");
    assert.equal((await daemon.info("web")).state, "paused", "paused it was, paused it stays");
    assert.deepEqual(
      [...Deno.readDirSync(join(daemon.dir, "snapshots", "web", "s2"))].map((e) => e.name),
      ["snapshot.json"],
    );

    for (let round = 0; round < 2; round++) {
      const info = await api.post<DomainInfo>("/v1/domains/web/snapshots/s1/revert");
      assert.equal(info.state, "running");
      const restored = await counts(daemon, "web", "restored");
      assert.equal(restored.at(-1), atS1, `round ${round}: back to the count at s1`);
      if (round === 0) assert.match(info.note ?? "", /later snapshots 's2' were deleted/);
    }
    const listed = await api.get<SnapshotInfo[]>("/v1/domains/web/snapshots");
    assert.deepEqual(listed.map((s) => [s.name, s.current]), [["s1", true]]);

    // Deleting under a running domain: its VMM lets go of the disk around the merge.
    await api.delete("/v1/domains/web/snapshots/s1");
    assert.equal((await daemon.info("web")).state, "running");
    assert.deepEqual((await api.get<VolumeInfo>("/v1/pools/default/volumes/root")).snapshots, []);
    assert.deepEqual(await api.get("/v1/domains/web/snapshots"), []);
    assert.ok(!(await exists(join(daemon.dir, "snapshots", "web"))));
    await api.post("/v1/domains/web/destroy");
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon with a stand-in VMM: clones of a running domain restore its state", async () => {
  const daemon = await start();
  try {
    const api = daemon.client;
    await withPool(daemon);
    await daemon.run({ name: "src", boot: { demo: true }, disks: [{ volume: "root" }] });
    await sleep(200);
    const clones = await api.post<DomainInfo[]>("/v1/domains/src/clone", { name: "c", count: 2 });
    assert.deepEqual(clones.map((c) => [c.name, c.state]), [["c-1", "paused"], ["c-2", "paused"]]);
    const [atClone] = await counts(daemon, "src", "saved");
    for (const clone of clones) {
      assert.deepEqual(await counts(daemon, clone.name, "restored"), [atClone]);
    }
    assert.equal((await daemon.info("src")).state, "running");
    // The state the clones share was removed once they had it.
    assert.deepEqual([...Deno.readDirSync(join(daemon.dir, "clones"))], []);

    await api.post<SnapshotInfo>("/v1/domains/src/snapshots", { name: "gold" });
    const [fromGold] = await api.post<DomainInfo[]>("/v1/domains/src/clone", {
      name: "g",
      snapshot: "gold",
      start: true,
    });
    assert.equal(fromGold.state, "running");
    assert.equal(fromGold.definition.disks![0].volume, "g-vda");
    const [, atGold] = await counts(daemon, "src", "saved");
    assert.deepEqual(await counts(daemon, "g", "restored"), [atGold]);
    for (const name of ["src", "c-1", "c-2", "g"]) await api.post(`/v1/domains/${name}/destroy`);
  } finally {
    await daemon.cleanup();
  }
});
