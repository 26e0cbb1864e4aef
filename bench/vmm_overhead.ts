/**
 * VMM memory overhead per domain: the resident memory of a running domain's VMM process
 * beyond what its guest touched, for `denovisor vmm` (as the daemon starts it) and, as
 * the baseline measured in the same run, QEMU running the same guest
 * (guests/build/domain.elf: idle, a heartbeat every 0.5 s). Printed next to
 * Firecracker's published figure (VMM overhead <= 5 MiB).
 *
 * Overhead = VmRSS - Rss of the guest-RAM mapping (/proc/<pid>/smaps), median of several
 * samples once the guest is up and ticking. Both VMMs map guest RAM lazily, so only the
 * pages the guest touched count as guest memory.
 *
 * Usage: deno run -A bench/vmm_overhead.ts [--samples N]
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

/** A running VMM, its console log and how to stop it. */
interface Running {
  pid: number;
  log: string;
  stop(): Promise<void>;
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

async function startDenovisor(dir: string, kernel: string): Promise<Running> {
  const config: VmmConfig = {
    name: "bench",
    uuid: "6a3c1a52-1f43-4d8e-9b9e-2b8d7f0c5e11",
    vcpus: 1,
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
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/main.ts`, "vmm", "--config", join(dir, "config.json")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  return {
    pid: child.pid,
    log: config.logFile,
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

/** Median overhead (KiB) and the last sample of a VMM whose guest is up. */
async function measure(
  name: string,
  start: (dir: string) => Promise<Running>,
  samples: number,
): Promise<{ overheadKiB: number; last: MemorySample }> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-bench-overhead-" });
  const vmm = await start(dir);
  try {
    await waitFor(vmm.log, /tick 2/, name);
    const overheads: number[] = [];
    let last: MemorySample | undefined;
    for (let i = 0; i < samples; i++) {
      const sample = await sampleMemory(vmm.pid, MEMORY_MIB * 1024);
      if (sample === undefined) throw new CouldNotMeasureError(`${name} exited while sampled`);
      if (sample.guestRssKiB === undefined) {
        throw new CouldNotMeasureError(`${name}: its guest-RAM mapping was not found in smaps`);
      }
      overheads.push(sample.vmRssKiB - sample.guestRssKiB);
      last = sample;
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
    }
    return { overheadKiB: median(overheads), last: last! };
  } finally {
    await vmm.stop();
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

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: "string", default: "10" } } });
  const samples = Number(values.samples);
  if (!Number.isInteger(samples) || samples < 1) {
    throw new CouldNotMeasureError("--samples takes a whole number above 0");
  }
  await requireKvm();
  const kernel = await ensureGuest("domain");
  console.log(
    `vmm_overhead: resident memory beyond the guest's, ${MEMORY_MIB} MiB domain.elf, idle, ` +
      `median of ${samples} samples`,
  );
  const results = [
    {
      name: "Denovisor",
      ...(await measure("Denovisor", (d) => startDenovisor(d, kernel), samples)),
    },
    { name: "QEMU", ...(await measure("QEMU", (d) => startQemu(d, kernel), samples)) },
  ];
  const mib = (kib: number) => fixed(kib / 1024, 1);
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(10)} overhead ${mib(r.overheadKiB).padStart(6)} MiB  ` +
        `(VmRSS ${mib(r.last.vmRssKiB)} MiB, guest Rss ${mib(r.last.guestRssKiB!)} MiB)`,
    );
  }
  console.log(
    `  ratio Denovisor/QEMU: ${fixed(results[0].overheadKiB / results[1].overheadKiB, 2)}x; ` +
      `Firecracker publishes <= ${FIRECRACKER_OVERHEAD_MIB} MiB: ${
        results[0].overheadKiB / 1024 <= FIRECRACKER_OVERHEAD_MIB ? "met" : "not met"
      }`,
  );
  const floor = await denoFloorKiB(false);
  const floorWorker = await denoFloorKiB(true);
  console.log(
    `  the Deno runtime's own floor here: ${mib(floor)} MiB idle, ${mib(floorWorker)} MiB ` +
      "with one idle Worker (each vCPU is a Worker); Denovisor runs from source (deno run), " +
      "so its module graph and type-stripping count too",
  );
}

if (import.meta.main) await runBenchmark("vmm_overhead", main);
