/**
 * Save, restore, snapshots and clones end to end through the daemon, with the counting
 * guest (guests/domain.c prints "tick N" about every 0.5 s, and "domain guest up" once
 * at boot): a restored guest goes on counting from where it was saved instead of booting
 * again; a snapshot of a running domain rolls its disk (judged with qemu-img compare)
 * and its memory back; clones of a running domain run from its memory without booting.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { DomainInfo, SaveResult, SnapshotInfo, VolumeInfo } from "../manager/api_types.ts";
import { openImage } from "../storage/image.ts";
import { domainGuest, TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";

const TIMEOUT_MS = 240_000;
/** The guest prints a tick about every 0.5 s: 60 s is far more than a few ticks need. */
const LOG_WAIT_MS = 60_000;
/** What the VMM logs once it has restored a state (vmm/vmm_domain.ts). */
const RESTORED = "denovisor vmm: restored from";

function snapshotTest(name: string, fn: () => Promise<void>): void {
  kvmTest(name, fn, TIMEOUT_MS);
}

async function log(daemon: TestDaemon, name: string): Promise<string> {
  return await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=10000`))
    .text();
}

/** The tick numbers in `text`, in order. */
function ticks(text: string): number[] {
  return [...text.matchAll(/tick (\d+)/g)].map((match) => Number(match[1]));
}

/** The highest tick in `text` before its last restore line (the count when it was saved). */
function lastTickBeforeRestore(text: string): number {
  return Math.max(...ticks(text.slice(0, text.lastIndexOf(RESTORED))));
}

/**
 * Waits until the log of `name` holds `restores` restore lines and two ticks after the
 * last one; returns the log and the ticks after that line.
 */
async function ticksAfterRestore(daemon: TestDaemon, name: string, restores: number) {
  const deadline = Date.now() + LOG_WAIT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await log(daemon, name);
    if (text.split(RESTORED).length - 1 === restores) {
      const after = ticks(text.slice(text.lastIndexOf(RESTORED)));
      if (after.length >= 2) return { text, after };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no two ticks after restore ${restores} in the log of ${name}:\n${text}`);
}

/**
 * Whether `first`, the first tick after a restore, continues `last`, the count at the
 * save: the next one, or the one after when the save cut a "tick N" line in two (the
 * VMM's log line then splits it, and neither half reads as that tick).
 */
function continues(first: number, last: number): boolean {
  return first === last + 1 || first === last + 2;
}

async function setUpVolume(daemon: TestDaemon): Promise<VolumeInfo> {
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

async function same(a: string, b: string): Promise<boolean> {
  const out = await new Deno.Command("qemu-img", { args: ["compare", "-U", a, b] }).output();
  assert.ok(out.code === 0 || out.code === 1, new TextDecoder().decode(out.stderr));
  return out.code === 0;
}

snapshotTest("daemon: a saved counting guest is restored and goes on counting", async () => {
  const daemon = await TestDaemon.start();
  try {
    const api = daemon.client;
    await daemon.run(domainGuest("count"));
    await daemon.waitForLog("count", "tick 3", LOG_WAIT_MS);
    const file = join(daemon.dir, "count.state");
    const saved = await api.post<SaveResult>("/v1/domains/count/save", { file });
    assert.equal(saved.kept, false);
    assert.equal((await daemon.info("count")).state, "shutoff");
    const last = Math.max(...ticks(await log(daemon, "count")));
    assert.ok(last >= 3);

    const restored = await api.post<DomainInfo>("/v1/restore", { file });
    assert.equal(restored.state, "running");
    const { text, after } = await ticksAfterRestore(daemon, "count", 1);
    // Counting went on from the saved count: no second boot, no tick 1 again.
    assert.equal(text.split("domain guest up").length - 1, 1, text);
    assert.ok(continues(after[0], last), `tick ${after[0]} after the save at ${last}:\n${text}`);
    await api.post("/v1/domains/count/destroy");
  } finally {
    await daemon.cleanup();
  }
});

snapshotTest(
  "daemon: revert to a snapshot of a running domain rolls back its disk and memory",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const volume = await setUpVolume(daemon);
      await daemon.run(domainGuest("snap", { disks: [{ volume: "root" }] }));
      await daemon.waitForLog("snap", "tick 2", LOG_WAIT_MS);
      const taken = await api.post<SnapshotInfo>("/v1/domains/snap/snapshots", { name: "s1" });
      assert.equal(taken.memory, true);
      assert.equal((await daemon.info("snap")).state, "running");
      // The snapshot restarted the VMM from the state it saved: the guest counts on.
      const first = await ticksAfterRestore(daemon, "snap", 1);
      const atSnapshot = lastTickBeforeRestore(first.text);
      assert.ok(continues(first.after[0], atSnapshot), first.text);

      await api.post("/v1/domains/snap/destroy");
      const image = openImage(volume.path);
      try {
        image.write(0, [new Uint8Array(4096).fill(0x5a)]);
        image.flush();
      } finally {
        image.close();
      }
      const snapshotImage = join(daemon.dir, "pool", ".snapshots", "root", "s1");
      assert.equal(await same(snapshotImage, volume.path), false, "the host write changed it");

      for (let round = 0; round < 2; round++) {
        const info = await api.post<DomainInfo>("/v1/domains/snap/snapshots/s1/revert");
        assert.equal(info.state, "running");
        assert.equal(await same(snapshotImage, volume.path), true, `round ${round}: disk`);
        // Memory went back too: counting starts again from the snapshot's count.
        const { text, after } = await ticksAfterRestore(daemon, "snap", 2 + round);
        assert.ok(continues(after[0], atSnapshot), `round ${round}:\n${text}`);
        assert.equal(text.split("domain guest up").length - 1, 1, text);
      }
      await api.post("/v1/domains/snap/destroy");
      await api.delete("/v1/domains/snap/snapshots/s1");
      const volumeInfo = await api.get<VolumeInfo>("/v1/pools/default/volumes/root");
      assert.deepEqual(volumeInfo.snapshots, []);
    } finally {
      await daemon.cleanup();
    }
  },
);

snapshotTest("daemon: three clones of a running domain run from its memory", async () => {
  const daemon = await TestDaemon.start();
  try {
    const api = daemon.client;
    await setUpVolume(daemon);
    await daemon.run(domainGuest("src", { disks: [{ volume: "root" }] }));
    await daemon.waitForLog("src", "tick 2", LOG_WAIT_MS);
    const clones = await api.post<DomainInfo[]>("/v1/domains/src/clone", {
      name: "c",
      count: 3,
      start: true,
    });
    assert.deepEqual(clones.map((c) => c.name), ["c-1", "c-2", "c-3"]);
    assert.equal(new Set(clones.map((c) => c.uuid)).size, 3);
    for (const clone of clones) {
      assert.equal(clone.state, "running");
      // A clone never booted: it counts on from the source's memory (tick 2 or later).
      const { text, after } = await ticksAfterRestore(daemon, clone.name, 1);
      assert.ok(!text.includes("domain guest up"), text);
      assert.ok(after[0] >= 3, text);
    }
    // The source was paused for the copy and runs on.
    assert.equal((await daemon.info("src")).state, "running");
    await ticksAfterRestore(daemon, "src", 1);
    for (const name of ["src", "c-1", "c-2", "c-3"]) await api.post(`/v1/domains/${name}/destroy`);
  } finally {
    await daemon.cleanup();
  }
});
