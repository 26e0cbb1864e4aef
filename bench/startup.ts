/**
 * Start-up: wall time from process start to the exit of a guest that exits at once
 * (guests/build/hello.elf), Denovisor (`deno run -A main.ts run`) against QEMU
 * (`qemu-system-x86_64 -accel kvm -kernel`, SeaBIOS and its PVH option ROM), median of
 * several interleaved runs; then each VMM's peak memory without the guest's RAM.
 *
 * Memory, two ways, because neither VMM reports it itself:
 * - `/usr/bin/time` max RSS of the hello runs: the whole process, guest RAM included.
 * - A sampled run of a guest that lives a little longer (io_loop.elf, so there is time to
 *   look): /proc/<pid>/status VmHWM and the Rss of the guest-RAM mapping in
 *   /proc/<pid>/smaps, polled until the process exits; the last sample gives
 *   VmHWM - guest Rss, the VMM's own peak (a slight underestimate: guest Rss only grows).
 *
 * Usage: deno run -A bench/startup.ts [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type MemorySample, sampleMemory } from "./_proc_memory.ts";
import {
  CouldNotMeasureError,
  denovisorArgs,
  ensureGuest,
  fixed,
  median,
  qemuGuestArgs,
  REPO_ROOT,
  requireKvm,
  runBenchmark,
  runQuiet,
  type VmmCommand,
} from "./_support.ts";

const MEMORY_MIB = 256;
const TIME_BINARY = "/usr/bin/time";
/** io_loop writes for the sampled run: long enough to be seen, short on both VMMs. */
const SAMPLED_LOOP_COUNT = 30000;
const SAMPLE_INTERVAL_MS = 10;

/** Denovisor's foreground one-shot VM, run from source (no compiled binary here). */
export function denovisorCommand(kernel: string, cmdline?: string): VmmCommand {
  return {
    name: "Denovisor",
    command: Deno.execPath(),
    args: denovisorArgs(
      ...["run", "--kernel", kernel, "--console", "null", "--memory", `${MEMORY_MIB}M`],
      ...(cmdline === undefined ? [] : ["--cmdline", cmdline]),
    ),
    successStatus: 0,
  };
}

/** QEMU with the debug-exit device; it exits with (status << 1) | 1. */
export function qemuCommand(kernel: string, cmdline?: string): VmmCommand {
  return {
    name: "QEMU",
    command: "qemu-system-x86_64",
    args: qemuGuestArgs(kernel, { append: cmdline, memoryMiB: MEMORY_MIB, serial: "null" }),
    successStatus: 1,
  };
}

/** One timed start-up. */
interface TimedRun {
  seconds: number;
  maxRssKiB: number;
}

/** Runs `vmm` under /usr/bin/time; wall time is taken here, from spawn to exit. */
async function timedRun(vmm: VmmCommand): Promise<TimedRun> {
  const rssFile = await Deno.makeTempFile({ prefix: "denovisor-bench-rss-" });
  try {
    const start = performance.now();
    const result = await runQuiet(TIME_BINARY, [
      "-f",
      "%M",
      "-o",
      rssFile,
      vmm.command,
      ...vmm.args,
    ]);
    const seconds = (performance.now() - start) / 1000;
    if (result.code !== vmm.successStatus) {
      throw new CouldNotMeasureError(
        `${vmm.name} exited with ${result.code}, not ${vmm.successStatus}: ${result.stderr.trim()}`,
      );
    }
    // With a non-zero status, time writes "Command exited with..." before the figure.
    const lines = (await Deno.readTextFile(rssFile)).trim().split("\n");
    const maxRssKiB = Number(lines[lines.length - 1]);
    if (!Number.isFinite(maxRssKiB)) {
      throw new CouldNotMeasureError(`${TIME_BINARY} wrote no max RSS for ${vmm.name}`);
    }
    return { seconds, maxRssKiB };
  } finally {
    await Deno.remove(rssFile).catch(() => {});
  }
}

/** Runs `vmm` and polls its memory until it exits; resolves with the last sample. */
async function sampledRun(vmm: VmmCommand): Promise<MemorySample> {
  const child = new Deno.Command(vmm.command, {
    args: vmm.args,
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let last: MemorySample | undefined;
  while (!exited) {
    const sample = await sampleMemory(child.pid, MEMORY_MIB * 1024);
    if (sample) last = sample;
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
  }
  const { code } = await status;
  if (code !== vmm.successStatus) {
    throw new CouldNotMeasureError(`${vmm.name} exited with ${code} in the sampled run`);
  }
  if (!last) throw new CouldNotMeasureError(`${vmm.name} exited before it could be sampled`);
  return last;
}

async function requireTools(): Promise<void> {
  await Deno.stat(TIME_BINARY).catch(() => {
    throw new CouldNotMeasureError(`${TIME_BINARY} is missing; apt-get install time`);
  });
  const qemu = await runQuiet("qemu-system-x86_64", ["--version"]);
  if (qemu.code !== 0) throw new CouldNotMeasureError("qemu-system-x86_64 --version failed");
}

function mib(kib: number | undefined): string {
  return kib === undefined ? "unknown" : fixed(kib / 1024, 1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new CouldNotMeasureError("--runs takes a whole number above 0");
  }
  await requireKvm();
  await requireTools();
  const hello = await ensureGuest("hello");
  const ioLoop = await ensureGuest("io_loop");
  const vmms = [denovisorCommand(hello), qemuCommand(hello)];

  console.log(`startup: process start to guest exit, hello.elf, ${runs} interleaved runs each`);
  // Untimed warm-up: Deno's module cache, both binaries in the page cache.
  for (const vmm of vmms) await timedRun(vmm);
  const timed = vmms.map(() => [] as TimedRun[]);
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) timed[i].push(await timedRun(vmms[i]));
  }
  const seconds = timed.map((t) => median(t.map((r) => r.seconds)));
  const maxRss = timed.map((t) => median(t.map((r) => r.maxRssKiB)));
  vmms.forEach((vmm, i) => {
    const all = timed[i].map((r) => fixed(r.seconds, 3)).join(" ");
    console.log(`  ${vmm.name.padEnd(10)} median ${fixed(seconds[i], 3)} s  (runs: ${all})`);
  });
  const ratio = seconds[0] / seconds[1];
  console.log(
    `  ratio Denovisor/QEMU: ${fixed(ratio, 3)}x (target: faster than QEMU, < 1x: ${
      ratio < 1 ? "met" : "not met"
    })`,
  );
  console.log(
    "  Denovisor ran from source (deno run -A main.ts run): the deno compile'd binary " +
      "cannot be built here (no denort), so module loading and type-stripping are included",
  );

  console.log(`memory (guest RAM ${MEMORY_MIB} MiB, mapped lazily by both), MiB`);
  const row = (cells: string[]) =>
    console.log(cells.map((c, i) => i === 0 ? c.padEnd(12) : c.padStart(16)).join(""));
  row(["", "hello max RSS", "io_loop VmHWM", "guest Rss", "VMM w/o guest", "hello - guest"]);
  const sampledVmms = [
    denovisorCommand(ioLoop, `count=${SAMPLED_LOOP_COUNT}`),
    qemuCommand(ioLoop, `count=${SAMPLED_LOOP_COUNT}`),
  ];
  const own: Array<number | undefined> = [];
  for (const [i, vmm] of sampledVmms.entries()) {
    const sample = await sampledRun(vmm);
    const guest = sample.guestRssKiB;
    own.push(guest === undefined ? undefined : sample.vmHwmKiB - guest);
    row([
      `  ${vmm.name}`,
      mib(maxRss[i]),
      mib(sample.vmHwmKiB),
      mib(guest),
      mib(own[i]),
      mib(guest === undefined ? undefined : maxRss[i] - guest),
    ]);
  }
  if (own[0] !== undefined && own[1] !== undefined) {
    console.log(
      `  ratio of VMM memory without guest, Denovisor/QEMU: ${fixed(own[0] / own[1], 2)}x`,
    );
  }
}

if (import.meta.main) await runBenchmark("startup", main);
