/**
 * VMM memory overhead per domain: the resident memory of a running domain's VMM process
 * beyond what its guest touched, for `denovisor vmm` (as the daemon starts it) with 1, 2,
 * 4 and 8 vCPUs and, as the baseline measured in the same run, QEMU running the same guest
 * (guests/build/domain.elf: idle, a heartbeat every 0.5 s) with 1 vCPU. Printed next to
 * the targets (<= 45 MiB with 1 vCPU, <= +3 MiB per further vCPU) and Firecracker's
 * published figure (VMM overhead <= 5 MiB).
 *
 * Two figures per Denovisor run:
 * - exact: the VMM's own `DENOVISOR_STATS` report (vmm/stats_hook.ts) written at exit:
 *   VmHWM minus the Rss of its guest-RAM mappings read right before they were unmapped;
 * - sampled (both VMMs, the same way): VmRSS minus the Rss of the guest-RAM mapping in
 *   /proc/<pid>/smaps, median of several samples once the guest is up and ticking.
 * Both VMMs map guest RAM lazily, so only the pages the guest touched count as guest memory.
 * The sampled figure is also split into anonymous memory beyond the guest's (the VMM's
 * own: heaps, stacks) and file pages (the executable's text and data, shared by every
 * VMM running the same binary), so the cost of one more domain on a host shows.
 *
 * vCPU 0 runs on a Worker, the others off-thread (core/vcpu_off_thread.ts); `--all-workers`
 * also measures every count with a Worker per vCPU (DENOVISOR_VCPU_WORKERS=all) in the
 * same run.
 *
 * Usage: deno run -A bench/vmm_overhead.ts [--samples N] [--vcpus 1,2,4,8] [--all-workers]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { type MemorySample, sampleMemory } from "./_proc_memory.ts";
import {
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  REPO_ROOT,
  requireKvm,
  runBenchmark,
} from "./_support.ts";
import type { VmmConfig } from "../vmm/vmm_config.ts";

const MEMORY_MIB = 256;
const FIRECRACKER_OVERHEAD_MIB = 5;
const SAMPLE_INTERVAL_MS = 200;
/** Time for a guest to come up: QEMU's SeaBIOS runs on the slow CPL0 emulator here. */
const UP_TIMEOUT_MS = 120_000;

/** A running VMM, its console log, how to stop it and where it reports at exit. */
interface Running {
  pid: number;
  log: string;
  stop(): Promise<void>;
  /** The DENOVISOR_STATS file, written when the VMM exits (Denovisor only). */
  statsFile?: string;
}

/** Overhead figures of one VMM run, KiB. */
interface Overhead {
  /** Median of VmRSS - guest Rss samples while idle. */
  sampledKiB: number;
  /** Median of RssAnon - guest Rss: the VMM's own anonymous memory. */
  anonKiB: number;
  /** Median of RssFile: file pages, shared with other processes running the same files. */
  fileKiB: number;
  last: MemorySample;
  /** VmHWM - guest Rss from the VMM's own exit report. */
  exactKiB?: number;
  report?: { vmHwmKiB: number; vmRssKiB: number; guestRssKiB: number };
}

async function waitFor(file: string, pattern: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + UP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(file).catch(() => "");
    if (pattern.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new CouldNotMeasureError(`${what}: no ${pattern} in ${file} within ${UP_TIMEOUT_MS} ms`);
}

async function startDenovisor(
  dir: string,
  kernel: string,
  vcpus: number,
  workerEach = false,
): Promise<Running> {
  const config: VmmConfig = {
    name: "bench",
    uuid: "6a3c1a52-1f43-4d8e-9b9e-2b8d7f0c5e11",
    vcpus,
    memoryBytes: MEMORY_MIB * 1024 * 1024,
    boot: { kind: "linux", kernel, cmdline: "" },
    disks: [],
    nics: [],
    balloon: false,
    onReboot: "destroy",
    logFile: join(dir, "console.log"),
    runDir: dir,
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  const statsFile = join(dir, "stats.json");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/main.ts`, "vmm", "--config", join(dir, "config.json")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { DENOVISOR_STATS: statsFile, DENOVISOR_VCPU_WORKERS: workerEach ? "all" : "first" },
    detached: true,
  }).spawn();
  return {
    pid: child.pid,
    log: config.logFile,
    statsFile,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

function startQemu(dir: string, kernel: string): Promise<Running> {
  const log = join(dir, "qemu-serial.log");
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      ...["-accel", "kvm", "-display", "none", "-no-reboot", "-nodefaults"],
      ...["-serial", `file:${log}`, "-m", `${MEMORY_MIB}`, "-kernel", kernel],
      ...["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return Promise.resolve({
    pid: child.pid,
    log,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  });
}

/** Sampled overhead of a VMM whose guest is up, and its exit report's exact one. */
async function measure(
  name: string,
  start: (dir: string) => Promise<Running>,
  samples: number,
): Promise<Overhead> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-bench-overhead-" });
  const vmm = await start(dir);
  let stopped = false;
  try {
    await waitFor(vmm.log, /tick 2/, name);
    const overheads: number[] = [];
    const anon: number[] = [];
    const file: number[] = [];
    let last: MemorySample | undefined;
    for (let i = 0; i < samples; i++) {
      const sample = await sampleMemory(vmm.pid, MEMORY_MIB * 1024);
      if (sample === undefined) throw new CouldNotMeasureError(`${name} exited while sampled`);
      if (sample.guestRssKiB === undefined) {
        throw new CouldNotMeasureError(`${name}: its guest-RAM mapping was not found in smaps`);
      }
      overheads.push(sample.vmRssKiB - sample.guestRssKiB);
      anon.push((sample.rssAnonKiB ?? 0) - sample.guestRssKiB);
      file.push(sample.rssFileKiB ?? 0);
      last = sample;
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
    }
    stopped = true;
    await vmm.stop();
    const sampled = {
      sampledKiB: median(overheads),
      anonKiB: median(anon),
      fileKiB: median(file),
      last: last!,
    };
    if (vmm.statsFile === undefined) return sampled;
    const text = await Deno.readTextFile(vmm.statsFile).catch(() => undefined);
    if (text === undefined) {
      throw new CouldNotMeasureError(`${name} wrote no DENOVISOR_STATS report at exit`);
    }
    const report = JSON.parse(text);
    return {
      ...sampled,
      exactKiB: report.vmHwmKiB - report.guestRssKiB,
      report,
    };
  } finally {
    if (!stopped) await vmm.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** VmRSS (KiB) of an idle `deno` process, and of one that also runs one idle Worker. */
async function denoFloorKiB(withWorker: boolean): Promise<number> {
  const code = withWorker
    ? "new Worker('data:text/javascript,setInterval(()=>{},1000)',{type:'module'});" +
      "setInterval(()=>{},1000)"
    : "setInterval(()=>{},1000)";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const sample = await sampleMemory(child.pid, 1);
    if (sample === undefined) throw new CouldNotMeasureError("the idle deno process exited");
    return sample.vmRssKiB;
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

const mib = (kib: number) => fixed(kib / 1024, 1);

type Row = { vcpus: number } & Overhead;

async function measureCounts(
  kernel: string,
  counts: number[],
  samples: number,
  workerEach: boolean,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const vcpus of counts) {
    const name = `Denovisor ${vcpus} vCPU${workerEach ? " (a Worker each)" : ""}`;
    rows.push({
      vcpus,
      ...(await measure(name, (d) => startDenovisor(d, kernel, vcpus, workerEach), samples)),
    });
  }
  return rows;
}

/** The table of one configuration, and its figures against the targets. */
function printRows(title: string, rows: Row[], qemu: Overhead): void {
  console.log(`  ${title}:`);
  console.log(
    "  vCPUs   exact MiB   sampled MiB   anon MiB   file MiB   VmHWM MiB   guest Rss MiB   " +
      "vs QEMU (sampled)",
  );
  for (const r of rows) {
    console.log(
      `  ${String(r.vcpus).padStart(5)} ${mib(r.exactKiB!).padStart(11)} ` +
        `${mib(r.sampledKiB).padStart(13)} ${mib(r.anonKiB).padStart(10)} ` +
        `${mib(r.fileKiB).padStart(10)} ${mib(r.report!.vmHwmKiB).padStart(11)} ` +
        `${mib(r.report!.guestRssKiB).padStart(15)} ${
          fixed(r.sampledKiB / qemu.sampledKiB).padStart(18)
        }x`,
    );
  }
  const one = rows.find((r) => r.vcpus === 1);
  if (!one) return;
  console.log(
    `  1 vCPU: ${mib(one.exactKiB!)} MiB (target <= 45 MiB: ` +
      `${one.exactKiB! / 1024 <= 45 ? "met" : "not met"}); Firecracker publishes <= ` +
      `${FIRECRACKER_OVERHEAD_MIB} MiB`,
  );
  for (const r of rows.filter((r) => r.vcpus > 1)) {
    const perVcpu = (r.exactKiB! - one.exactKiB!) / (r.vcpus - 1);
    console.log(
      `  ${r.vcpus} vCPUs: +${mib(perVcpu)} MiB per further vCPU (target <= +3 MiB: ` +
        `${perVcpu / 1024 <= 3 ? "met" : "not met"})`,
    );
  }
}

/** The --vcpus list: whole numbers from 1 to 64. */
function vcpuCounts(text: string): number[] {
  const counts = text.split(",").map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) {
    throw new CouldNotMeasureError(`--vcpus takes whole numbers from 1 to 64, such as 1,2,4,8`);
  }
  return counts;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      samples: { type: "string", default: "10" },
      vcpus: { type: "string", default: "1,2,4,8" },
      "all-workers": { type: "boolean", default: false },
    },
  });
  const samples = Number(values.samples);
  if (!Number.isInteger(samples) || samples < 1) {
    throw new CouldNotMeasureError("--samples takes a whole number above 0");
  }
  const counts = vcpuCounts(values.vcpus!);
  await requireKvm();
  const kernel = await ensureGuest("domain");
  console.log(
    `vmm_overhead: resident memory beyond the guest's, ${MEMORY_MIB} MiB domain.elf, idle, ` +
      `median of ${samples} samples; exact = the VMM's DENOVISOR_STATS (VmHWM - guest Rss)`,
  );
  const qemu = await measure("QEMU", (d) => startQemu(d, kernel), samples);
  const rows = await measureCounts(kernel, counts, samples, false);
  printRows("vCPU 0 on a Worker, the others off-thread (the default)", rows, qemu);
  if (values["all-workers"]) {
    printRows(
      "a Worker per vCPU (DENOVISOR_VCPU_WORKERS=all)",
      await measureCounts(kernel, counts, samples, true),
      qemu,
    );
  }
  console.log(
    `  QEMU, 1 vCPU: sampled ${mib(qemu.sampledKiB)} MiB (VmRSS ${mib(qemu.last.vmRssKiB)} MiB, ` +
      `guest Rss ${mib(qemu.last.guestRssKiB!)} MiB; anon ${mib(qemu.anonKiB)}, ` +
      `file ${mib(qemu.fileKiB)} MiB)`,
  );
  const floor = await denoFloorKiB(false);
  const floorWorker = await denoFloorKiB(true);
  console.log(
    `  the Deno runtime's own floor here: ${mib(floor)} MiB idle, ${mib(floorWorker)} MiB ` +
      "with one idle Worker (vCPU 0's); Denovisor runs from source (deno run), " +
      "so its module graph and type-stripping count too",
  );
}

if (import.meta.main) await runBenchmark("vmm_overhead", main);
