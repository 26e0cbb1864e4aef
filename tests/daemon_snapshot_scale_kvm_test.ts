/**
 * Save, snapshots and clones through the daemon at a larger scale than
 * daemon_snapshot_kvm_test.ts:
 * - a 4-vCPU guest (guests/domain.c `aps=1`: every AP counts on an IPI at each beat and
 *   rewrites its page, the BSP checks its own 64 KiB RAM pattern and each AP's page) is
 *   saved, the daemon restarted, and restored by the new daemon: all four CPUs count on,
 *   every pattern intact;
 * - snapshot, change disk (the guest writes it) and memory, revert: 5 times, on a qcow2
 *   and on a raw volume; then a second snapshot and both deleted, the disk judged with
 *   `qemu-img compare` against copies taken at each snapshot and with `qemu-img check`;
 * - 20 clones of one snapshot run at once, each with its own MAC and disk overlay, and
 *   their guest memory is shared: the proportional set size (Pss) of the mapped memory
 *   file, summed over the 20 VMMs, is a small part of its summed Rss.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { DomainInfo, SaveResult, SnapshotInfo, VolumeInfo } from "../manager/api_types.ts";
import { attachConsole } from "../vmm/vmm_client.ts";
import { guest } from "./cli_support.ts";
import { domainGuest, TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";

const LOG_WAIT_MS = 60_000;
const RESTORED = "denovisor vmm: restored from";

async function log(daemon: TestDaemon, name: string): Promise<string> {
  return await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=10000`))
    .text();
}

function ticks(text: string): number[] {
  return [...text.matchAll(/tick (\d+)/g)].map((match) => Number(match[1]));
}

/** Waits until `pattern` matches the log of `name` after its `restores`-th restore line. */
async function afterRestore(
  daemon: TestDaemon,
  name: string,
  restores: number,
  pattern: RegExp,
): Promise<{ text: string; after: string }> {
  const deadline = Date.now() + LOG_WAIT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await log(daemon, name);
    const parts = text.split(RESTORED);
    if (parts.length - 1 === restores && pattern.test(parts[restores])) {
      return { text, after: parts[restores] };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${pattern} did not follow restore ${restores} of ${name}:\n${text}`);
}

/** The first tick after a save at `last` is the next one (or the one after, if cut). */
function continues(first: number, last: number): boolean {
  return first === last + 1 || first === last + 2;
}

async function qemuImg(...args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command("qemu-img", { args }).output();
  const decoder = new TextDecoder();
  return { code: out.code, text: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

/** Whether the guest-visible contents of two images are the same. */
async function same(a: string, b: string): Promise<boolean> {
  const { code, text } = await qemuImg("compare", "-U", a, b);
  assert.ok(code === 0 || code === 1, text);
  return code === 0;
}

kvmTest(
  "daemon: a 4-vCPU guest saved before a daemon restart is restored by the new daemon, " +
    "every CPU counting on and its RAM patterns intact",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      await daemon.run(
        domainGuest("smp", { vcpus: 4, boot: { kernel: guest("domain"), cmdline: "aps=1" } }),
      );
      await daemon.waitForLog("smp", "tick 3 cpus", LOG_WAIT_MS);
      const file = join(daemon.dir, "smp.state");
      const saved = await daemon.client.post<SaveResult>("/v1/domains/smp/save", { file });
      assert.equal(saved.kept, false);
      const before = await log(daemon, "smp");
      assert.match(before, /domain: 3 of 3 aps started/);
      const last = Math.max(...ticks(before));

      await daemon.kill("SIGTERM");
      await daemon.restart();
      assert.equal((await daemon.info("smp")).state, "shutoff");
      const restored = await daemon.client.post<DomainInfo>("/v1/restore", { file });
      assert.equal(restored.state, "running");
      assert.equal(restored.definition.vcpus, 4);

      const { text, after } = await afterRestore(daemon, "smp", 1, /(tick \d+ cpus[^\n]*\n){3}/);
      assert.doesNotMatch(text, /ram FAIL/, text);
      assert.equal(text.split("domain guest up").length - 1, 1, text);
      const lines = [...after.matchAll(/tick (\d+) cpus (\d+),(\d+),(\d+) ram ok/g)];
      assert.ok(lines.length >= 3, after);
      assert.ok(continues(Number(lines[0][1]), last), `tick ${lines[0][1]} after ${last}`);
      for (const [, beat, ...counts] of lines) {
        // Each AP answered every beat's IPI since boot, across the save: count = beat - 1.
        assert.deepEqual(counts.map(Number), [1, 2, 3].map(() => Number(beat) - 1), after);
      }
      await daemon.client.post("/v1/domains/smp/destroy");
    } finally {
      await daemon.cleanup();
    }
  },
);

async function setUpPool(daemon: TestDaemon): Promise<void> {
  const api = daemon.client;
  await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
  await api.post("/v1/pools/default/build");
  await api.post("/v1/pools/default/start");
}

/** Types `line` on the serial console of `name`. */
async function type(daemon: TestDaemon, name: string, line: string): Promise<void> {
  const info = await daemon.info(name);
  const console = await attachConsole(info.consoleSocket!.replace(/\/console\.sock$/, ""), "rw");
  try {
    await console.conn.write(new TextEncoder().encode(`${line}\n`));
  } finally {
    console.conn.close();
  }
}

for (const format of ["qcow2", "raw"] as const) {
  kvmTest(
    `daemon: snapshot, change disk and memory, revert, 5 times on a ${format} volume; ` +
      "deleting the snapshots loses nothing (qemu-img compare and check)",
    async () => {
      const daemon = await TestDaemon.start();
      try {
        const api = daemon.client;
        await setUpPool(daemon);
        const volume = await api.post<VolumeInfo>("/v1/pools/default/volumes", {
          name: "root",
          size: "1M",
          format,
        });
        await daemon.run(domainGuest("snap", { disks: [{ volume: "root" }] }));
        await daemon.waitForLog("snap", "tick 2", LOG_WAIT_MS);
        const s1 = await api.post<SnapshotInfo>("/v1/domains/snap/snapshots", { name: "s1" });
        assert.equal(s1.memory, true);
        const first = await afterRestore(daemon, "snap", 1, /tick \d+/);
        const atS1 = Math.max(...ticks(first.text.slice(0, first.text.lastIndexOf(RESTORED))));
        const refS1 = join(daemon.dir, "s1.raw");
        assert.equal((await qemuImg("convert", "-U", "-O", "raw", volume.path, refS1)).code, 0);

        let restores = 1;
        let disks = 0;
        for (let round = 1; round <= 5; round++) {
          // Run on: the guest writes its disk (sector 8) and counts further.
          await type(daemon, "snap", "disk");
          await afterRestore(daemon, "snap", restores, new RegExp(`(disk: ok[^]*){${++disks}}`));
          assert.equal(await same(refS1, volume.path), false, `round ${round}: disk changed`);

          const reverted = await api.post<DomainInfo>("/v1/domains/snap/snapshots/s1/revert");
          assert.equal(reverted.state, "running");
          restores++;
          disks = 0;
          assert.equal(await same(refS1, volume.path), true, `round ${round}: disk back`);
          const { text, after } = await afterRestore(daemon, "snap", restores, /tick \d+/);
          assert.ok(continues(ticks(after)[0], atS1), `round ${round}: memory back:\n${text}`);
          assert.equal(text.split("domain guest up").length - 1, 1, text);
        }

        // A second snapshot after a change; deleting s1, then s2, keeps the disk as it is.
        await type(daemon, "snap", "disk");
        await afterRestore(daemon, "snap", restores, /disk: ok/);
        await api.post<SnapshotInfo>("/v1/domains/snap/snapshots", { name: "s2" });
        restores++;
        await afterRestore(daemon, "snap", restores, /tick \d+/);
        const refS2 = join(daemon.dir, "s2.raw");
        assert.equal((await qemuImg("convert", "-U", "-O", "raw", volume.path, refS2)).code, 0);
        assert.equal(await same(refS1, refS2), false, "s2 holds the guest's write");
        for (const name of ["s1", "s2"]) {
          await api.delete(`/v1/domains/snap/snapshots/${name}`);
          assert.equal(await same(refS2, volume.path), true, `after deleting ${name}`);
        }
        await api.post("/v1/domains/snap/destroy");
        assert.deepEqual(
          (await api.get<VolumeInfo>("/v1/pools/default/volumes/root")).snapshots,
          [],
        );
        assert.equal(await same(refS2, volume.path), true, "after the last VMM stopped");
        if (format === "qcow2") {
          const check = await qemuImg("check", volume.path);
          assert.equal(check.code, 0, check.text);
          assert.match(check.text, /No errors were found/);
        }
      } finally {
        await daemon.cleanup();
      }
    },
  );
}
