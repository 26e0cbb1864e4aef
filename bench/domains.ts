/**
 * The toolstack at work, through a real `denovisor daemon` and its API socket:
 *
 * - Domain creation rate: define + start + the guest's first console output (guests/
 *   domain.c prints "domain guest up" into the domain's log) + destroy + undefine, one
 *   domain at a time and then one worker per host core; printed next to Firecracker's
 *   published 5 microVMs created per host core per second (issue 15's target), with 1
 *   and with 20 other domains running meanwhile (`--running`), each time with the daemon's
 *   VMM pool off and on (`--vmm-pool`, the same run), and the start to first guest output
 *   against the target of 60 ms.
 * - VMM memory overhead: for a few running domains, the VMM's resident set without the
 *   resident part of guest RAM (from /proc/<pid>/smaps), next to Firecracker's published
 *   < 5 MiB.
 * - API latency of GET /v1/domains (`denovisor list`) with 100 domains defined.
 *
 * Usage: deno run -A bench/domains.ts [--runs N] [--list-calls N] [--running 1,20]
 *        [--vmm-pool 0,2]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ApiClient } from "../manager/api_client.ts";
import type { DomainDefinition, DomainInfo } from "../manager/api_types.ts";
import { sampleMemory } from "./_proc_memory.ts";
import {
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  REPO_ROOT,
  requireKvm,
  runBenchmark,
} from "./_support.ts";

const GUEST_MIB = 32;
const FIRST_OUTPUT = "domain guest up";
const MEMORY_DOMAINS = 3;
const LIST_DOMAINS = 100;

/** A daemon child process on a private directory (bench/clones.ts uses it too). */
export class BenchDaemon {
  readonly dir: string;
  readonly api: ApiClient;
  readonly #child: Deno.ChildProcess;

  private constructor(dir: string, child: Deno.ChildProcess) {
    this.dir = dir;
    this.#child = child;
    this.api = new ApiClient(`${dir}/api.sock`);
  }

  /** `vmmPool`: the daemon's `--vmm-pool` (its default when undefined). */
  static async start(vmmPool?: number): Promise<BenchDaemon> {
    const dir = await Deno.makeTempDir({ prefix: "denovisor-bench-daemon-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${REPO_ROOT}/main.ts`,
        "daemon",
        "--state-dir",
        dir,
        "--socket",
        `${dir}/api.sock`,
        ...(vmmPool === undefined ? [] : ["--vmm-pool", String(vmmPool)]),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const daemon = new BenchDaemon(dir, child);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        await daemon.api.get("/v1/host");
        return daemon;
      } catch {
        await sleep(100);
      }
    }
    await daemon.stop();
    throw new CouldNotMeasureError("the daemon did not answer within 60 s");
  }

  async stop(): Promise<void> {
    for (const domain of await this.api.get<DomainInfo[]>("/v1/domains").catch(() => [])) {
      if (domain.pid) await this.api.post(`/v1/domains/${domain.name}/destroy`).catch(() => {});
    }
    this.api.close();
    this.#child.kill("SIGTERM");
    await this.#child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /**
   * Polls the domain's log (through the API) until the guest's first line is there;
   * returns the log.
   */
  async waitForOutput(name: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const response = await this.api.request("GET", `/v1/domains/${name}/logs?lines=50`);
      const text = await response.text();
      if (text.includes(FIRST_OUTPUT)) return text;
      await sleep(2);
    }
    throw new CouldNotMeasureError(`domain ${name} printed nothing within 30 s`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function definition(name: string, kernel: string): DomainDefinition {
  return { name, boot: { kernel }, memory: GUEST_MIB };
}

/** Milliseconds of each phase of the last sequential creations, for the breakdown. */
const phases: { start: number[]; output: number[]; stop: number[] } = {
  start: [],
  output: [],
  stop: [],
};
/** How many creations a pooled VMM served (the domain's log says so). */
let pooledStarts = 0;

/** One full creation; returns its seconds. */
async function createOnce(daemon: BenchDaemon, name: string, kernel: string): Promise<number> {
  const start = performance.now();
  await daemon.api.post("/v1/domains?start=1", definition(name, kernel));
  const started = performance.now();
  const log = await daemon.waitForOutput(name);
  const output = performance.now();
  await daemon.api.post(`/v1/domains/${name}/destroy`);
  await daemon.api.delete(`/v1/domains/${name}`);
  const end = performance.now();
  phases.start.push(started - start);
  phases.output.push(output - started);
  phases.stop.push(end - output);
  if (log.includes("taken from the pool")) pooledStarts++;
  return (end - start) / 1000;
}

/** One configuration's figures, for the summary. */
interface CreationFigures {
  running: number;
  pool: number;
  sequentialMs: number;
  startMs: number;
  startToOutputMs: number;
  perCore: number;
  pooled: string;
}

async function creationRate(
  daemon: BenchDaemon,
  kernel: string,
  runs: number,
  running: number,
  pool: number,
): Promise<CreationFigures> {
  const cores = navigator.hardwareConcurrency;
  await createOnce(daemon, "warmup", kernel); // Module cache and page cache.
  await sleep(2000); // The pool refilled after the warm-up's take.
  const sequential: number[] = [];
  for (const list of Object.values(phases)) list.length = 0;
  pooledStarts = 0;
  for (let i = 0; i < runs; i++) sequential.push(await createOnce(daemon, `seq-${i}`, kernel));
  const pooledSequential = pooledStarts;
  const phase = (list: number[]) => fixed(median(list), 0);
  const each = median(sequential);
  const startToOutput = median(phases.start.map((ms, i) => ms + phases.output[i]));
  const startMs = median(phases.start);
  console.log(
    `creation (define + start + first output + destroy + undefine), ${running} other ` +
      `domains running, VMM pool ${pool}, ${runs} in sequence:`,
  );
  console.log(
    `  median ${fixed(each * 1000, 0)} ms each (runs: ${
      sequential.map((s) => fixed(s * 1000, 0)).join(" ")
    }) -> ${fixed(1 / each, 2)} domains/s; ${pooledSequential} of ${runs} from the pool`,
  );
  console.log(
    `  median phases: define + start (VMM process up, control socket answering) ` +
      `${phase(phases.start)} ms, to first output ${phase(phases.output)} ms, ` +
      `destroy + undefine ${phase(phases.stop)} ms`,
  );
  console.log(
    `  start to first guest output: median ${fixed(startToOutput, 0)} ms; target <= 60 ms: ` +
      `${fixed(startToOutput / 60, 1)}x`,
  );
  await sleep(2000);
  pooledStarts = 0;
  const parallelStart = performance.now();
  await Promise.all(
    Array.from({ length: cores }, async (_, worker) => {
      for (let i = 0; i < runs; i++) await createOnce(daemon, `par-${worker}-${i}`, kernel);
    }),
  );
  const rate = (cores * runs) / ((performance.now() - parallelStart) / 1000);
  console.log(
    `  ${cores} workers in parallel (one per core): ${fixed(rate, 2)} domains/s = ` +
      `${fixed(rate / cores, 2)} per core per second; ${pooledStarts} of ${
        cores * runs
      } from the pool`,
  );
  console.log(
    `  Firecracker (published) and target: 5 per core per second; Denovisor/target: ${
      fixed(rate / cores / 5, 2)
    }x`,
  );
  return {
    running,
    pool,
    sequentialMs: each * 1000,
    startMs,
    startToOutputMs: startToOutput,
    perCore: rate / cores,
    pooled: `${pooledSequential}/${runs} + ${pooledStarts}/${cores * runs}`,
  };
}

/** Starts `count` domains that keep running (guests/domain.c ticks) during a measurement. */
async function startBackground(daemon: BenchDaemon, kernel: string, count: number) {
  for (let i = 0; i < count; i++) {
    await daemon.api.post("/v1/domains?start=1", definition(`bg-${i}`, kernel));
    await daemon.waitForOutput(`bg-${i}`);
  }
}

async function memoryOverhead(daemon: BenchDaemon, kernel: string): Promise<void> {
  const overheads: number[] = [];
  const rows: string[] = [];
  for (let i = 0; i < MEMORY_DOMAINS; i++) {
    const info = await daemon.api.post<DomainInfo>(
      "/v1/domains?start=1",
      definition(`mem-${i}`, kernel),
    );
    await daemon.waitForOutput(`mem-${i}`);
    await sleep(1000); // Let start-up settle (JIT, first ticks).
    const sample = await sampleMemory(info.pid!, GUEST_MIB * 1024);
    if (sample?.guestRssKiB === undefined) {
      throw new CouldNotMeasureError(`cannot tell the guest RAM of VMM ${info.pid} apart in smaps`);
    }
    const own = sample.vmRssKiB - sample.guestRssKiB;
    overheads.push(own);
    rows.push(
      `  mem-${i}: VmRSS ${fixed(sample.vmRssKiB / 1024, 1)} MiB, guest RAM resident ` +
        `${fixed(sample.guestRssKiB / 1024, 1)} MiB -> VMM ${fixed(own / 1024, 1)} MiB`,
    );
  }
  console.log(
    `VMM memory overhead (RSS beyond guest RAM), ${MEMORY_DOMAINS} running domains of ${GUEST_MIB} MiB:`,
  );
  for (const row of rows) console.log(row);
  const typical = median(overheads) / 1024;
  console.log(
    `  median ${fixed(typical, 1)} MiB per domain; Firecracker (published): < 5 MiB; ` +
      `Denovisor/Firecracker: ${fixed(typical / 5, 1)}x`,
  );
  for (let i = 0; i < MEMORY_DOMAINS; i++) {
    await daemon.api.post(`/v1/domains/mem-${i}/destroy`);
    await daemon.api.delete(`/v1/domains/mem-${i}`);
  }
}

async function listLatency(daemon: BenchDaemon, calls: number): Promise<void> {
  for (let i = 0; i < LIST_DOMAINS; i++) {
    await daemon.api.post("/v1/domains", { name: `list-${i}`, boot: { demo: true } });
  }
  for (let i = 0; i < 20; i++) await daemon.api.get("/v1/domains"); // Warm-up.
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    const list = await daemon.api.get<unknown[]>("/v1/domains");
    times.push(performance.now() - start);
    if (list.length !== LIST_DOMAINS) {
      throw new CouldNotMeasureError(`list returned ${list.length}`);
    }
  }
  times.sort((a, b) => a - b);
  const p99 = times[Math.min(times.length - 1, Math.floor(times.length * 0.99))];
  console.log(`API latency, GET /v1/domains with ${LIST_DOMAINS} domains defined, ${calls} calls:`);
  console.log(
    `  median ${fixed(median(times), 2)} ms, p99 ${fixed(p99, 2)} ms (client to daemon and back ` +
      `over the unix socket)`,
  );
}

/** A comma-separated list of whole numbers >= 0. */
function counts(text: string, option: string): number[] {
  const list = text.split(",").map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new CouldNotMeasureError(`--${option} takes whole numbers separated by commas`);
  }
  return list;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      "list-calls": { type: "string", default: "200" },
      running: { type: "string", default: "1,20" },
      "vmm-pool": { type: "string", default: "0,2" },
    },
  });
  const runs = Number(values.runs);
  const listCalls = Number(values["list-calls"]);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(listCalls) || listCalls < 1) {
    throw new CouldNotMeasureError("--runs and --list-calls take whole numbers above 0");
  }
  const runningCounts = counts(values.running, "running");
  const pools = counts(values["vmm-pool"], "vmm-pool");
  await requireKvm();
  const kernel = await ensureGuest("domain");
  const figures: CreationFigures[] = [];
  for (const running of runningCounts) {
    for (const pool of pools) {
      const daemon = await BenchDaemon.start(pool);
      try {
        await startBackground(daemon, kernel, running);
        figures.push(await creationRate(daemon, kernel, runs, running, pool));
      } finally {
        await daemon.stop();
      }
    }
  }
  console.log("summary (per core per second from the parallel runs; target 5, and 60 ms):");
  for (const f of figures) {
    console.log(
      `  running ${f.running}, pool ${f.pool}: ${fixed(f.sequentialMs, 0)} ms each in ` +
        `sequence, start ${fixed(f.startMs, 0)} ms, start to first output ` +
        `${fixed(f.startToOutputMs, 0)} ms, ${fixed(f.perCore, 2)} per core per second ` +
        `(${fixed(f.perCore / 5, 2)}x target); pooled starts ${f.pooled}`,
    );
  }
  const daemon = await BenchDaemon.start(pools.at(-1));
  try {
    await memoryOverhead(daemon, kernel);
    await listLatency(daemon, listCalls);
  } finally {
    await daemon.stop();
  }
}

if (import.meta.main) await runBenchmark("domains", main);
