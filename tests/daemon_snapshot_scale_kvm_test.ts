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
  throw new Error(
    `${pattern} did not follow restore ${restores} of ${name}:\n${text}\n${await diagnose(
      daemon,
      name,
    )}`,
  );
}

/** What a VMM whose guest is silent is doing: its vCPU CPU time twice, its threads. */
async function diagnose(daemon: TestDaemon, name: string): Promise<string> {
  const lines: string[] = [];
  try {
    const stats = async () =>
      JSON.stringify(
        (await daemon.client.get<{ vcpus: unknown }>(`/v1/domains/${name}/stats`)).vcpus,
      );
    lines.push(`vCPUs: ${await stats()}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    lines.push(`vCPUs 1 s later: ${await stats()}`);
    const pid = vmmProcess((await daemon.info(name)).pid!);
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const at = `/proc/${pid}/task/${task.name}`;
      const stat = Deno.readTextFileSync(`${at}/stat`);
      const comm = Deno.readTextFileSync(`${at}/comm`).trim();
      const wchan = (() => {
        try {
          return Deno.readTextFileSync(`${at}/wchan`);
        } catch {
          return "?";
        }
      })();
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      lines.push(
        `thread ${task.name} ${comm} state ${fields[0]} utime ${fields[11]} stime ${
          fields[12]
        } wchan ${wchan}`,
      );
    }
  } catch (error) {
    lines.push(`diagnosis failed: ${error}`);
  }
  return lines.join("\n");
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

/** Every process under `root` (itself included), from the parent links in /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // Gone.
    }
  }
  const found = [root];
  for (let i = 0; i < found.length; i++) found.push(...(children.get(found[i]) ?? []));
  return found;
}

/** Rss and Pss in KiB: of the whole process, and of its mappings of files named *.mem. */
interface MemoryUse {
  rss: number;
  pss: number;
  memFileRss: number;
  memFilePss: number;
}

function memoryUse(pid: number): MemoryUse {
  const use: MemoryUse = { rss: 0, pss: 0, memFileRss: 0, memFilePss: 0 };
  let inMemFile = false;
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    const header = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (header) {
      inMemFile = /\.mem(?: \(deleted\))?$/.test(header[1]);
      continue;
    }
    const field = line.match(/^(Rss|Pss):\s+(\d+) kB/);
    if (!field) continue;
    const kib = Number(field[2]);
    if (field[1] === "Rss") {
      use.rss += kib;
      if (inMemFile) use.memFileRss += kib;
    } else {
      use.pss += kib;
      if (inMemFile) use.memFilePss += kib;
    }
  }
  return use;
}

/** The Deno binary, to know a VMM process by its executable. */
const DENO = Deno.statSync(Deno.execPath());

/** The VMM (the Deno process) among the processes under a domain's launcher `pid`. */
function vmmProcess(pid: number): number {
  const denos = descendants(pid).filter((p) => {
    try {
      // By inode: a jailed VMM's binary is bound into its jail under another name.
      const exe = Deno.statSync(`/proc/${p}/exe`);
      return exe.dev === DENO.dev && exe.ino === DENO.ino;
    } catch {
      return false;
    }
  });
  assert.equal(denos.length, 1, `one VMM under ${pid}: ${denos}`);
  return denos[0];
}

const CLONES = 20;
const FILL_MIB = 16;

kvmTest(
  `daemon: ${CLONES} clones of one snapshot run at once, each with its own MAC and disk ` +
    "overlay, sharing the snapshot's memory pages",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      await setUpPool(daemon);
      await api.post<VolumeInfo>("/v1/pools/default/volumes", {
        name: "root",
        size: "1M",
        format: "qcow2",
      });
      await daemon.run(domainGuest("src", {
        memory: 64,
        boot: { kernel: guest("domain"), cmdline: `fill=${FILL_MIB}` },
        disks: [{ volume: "root" }],
        nics: [{}],
      }));
      await daemon.waitForLog("src", "tick 2 fill ok", LOG_WAIT_MS);
      await api.post<SnapshotInfo>("/v1/domains/src/snapshots", { name: "base" });
      await api.post("/v1/domains/src/destroy");

      const started = performance.now();
      const clones = await api.post<DomainInfo[]>("/v1/domains/src/clone", {
        name: "c",
        count: CLONES,
        snapshot: "base",
        start: true,
      });
      assert.equal(clones.length, CLONES);
      for (const clone of clones) {
        await afterRestore(daemon, clone.name, 1, /tick \d+ fill ok/);
      }
      const allRunningMs = performance.now() - started;
      const infos = await Promise.all(clones.map((c) => daemon.info(c.name)));
      assert.ok(infos.every((info) => info.state === "running"));
      const macs = new Set(infos.map((info) => info.definition.nics![0].mac));
      assert.equal(macs.size, CLONES, "a MAC each");
      const disks = new Set(infos.map((info) => info.definition.disks![0].volume));
      assert.equal(disks.size, CLONES, "a disk each");
      for (const volume of disks) {
        const info = await api.get<VolumeInfo>(`/v1/pools/default/volumes/${volume}`);
        const image = await qemuImg("info", "-U", "--output=json", info.path);
        assert.ok(JSON.parse(image.text)["backing-filename"], `${volume} is an overlay`);
      }

      const uses = infos.map((info) => memoryUse(vmmProcess(info.pid!)));
      const sum = (key: keyof MemoryUse) => uses.reduce((total, use) => total + use[key], 0);
      console.log(
        `${CLONES} clones running ${allRunningMs.toFixed(0)} ms after the request; ` +
          `VMMs: Rss ${(sum("rss") / 1024).toFixed(0)} MiB, Pss ${
            (sum("pss") / 1024).toFixed(0)
          } MiB; mapped memory files: Rss ${(sum("memFileRss") / 1024).toFixed(0)} MiB, Pss ${
            (sum("memFilePss") / 1024).toFixed(1)
          } MiB`,
      );
      // Every clone reads the filled pages at each beat, so each maps them all...
      assert.ok(uses.every((use) => use.memFileRss >= FILL_MIB * 1024), JSON.stringify(uses));
      // ...and they share them: the proportional total is far below the sum of the Rss.
      assert.ok(sum("memFilePss") < sum("memFileRss") / 4, JSON.stringify(uses));
      for (const clone of clones) await api.post(`/v1/domains/${clone.name}/destroy`);
    } finally {
      await daemon.cleanup();
    }
  },
  600_000,
);
