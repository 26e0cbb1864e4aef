/**
 * Microseconds per port-I/O exit: Denovisor's vCPU Worker against a C program running the
 * same KVM loop, both booting the same guest (guests/build/io_loop.elf, `count=N` writes
 * to port 0x80, then the debug-exit port).
 *
 * - Denovisor: in this process, through the real machine builder (`Machine.build`, a
 *   vCPU Worker, port 0x80 served on the Worker's own thread).
 * - C: bench/c/exit_loop.c (compiled here with gcc -O2), a minimal PVH loader with the
 *   same VM set-up, its vCPU loop on its main thread.
 *
 * Two estimates, both free of start-up cost (Worker start, guest boot, serial output):
 * - N/4N difference: each side runs N and 4N writes; (time(4N) - time(N)) divided by
 *   (exits(4N) - exits(N)), in wall and in process CPU time.
 * - Fastest window: each run records (time, exits) as it goes; the cost over the fastest
 *   window of WINDOW_EXITS exits, over all runs. Noise on a shared host comes in bursts
 *   and only adds time, so this is the steadiest figure; it is the headline.
 *
 * On hosts whose KVM emulates guest CPL0 code, every figure includes the emulated loop
 * instructions, the same on both sides. Rounds alternate which side goes first.
 *
 * Usage: deno run -A bench/exit_roundtrip.ts [--count N] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Kvm } from "../core/kvm.ts";
import {
  cRunner,
  denovisorRunner,
  type LoopRun,
  type LoopRunner,
  microsecondsPerExit,
  type PerExit,
} from "./_exit_runners.ts";
import { summariseWindows, type WindowSummary } from "./_exit_trace.ts";
import {
  buildC,
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  requireKvm,
  runBenchmark,
} from "./_support.ts";

/** The ratio Denovisor/C this benchmark aims at. */
export const TARGET_RATIO = 1.15;
/** Exits per window of the fastest-window estimate (about 50 ms here). */
export const WINDOW_EXITS = 4000;
const WARM_UP_COUNT = 1000;

/** One side of the comparison and its runs, round by round. */
interface Side {
  name: string;
  run: LoopRunner;
  small: LoopRun[];
  large: LoopRun[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "10000" },
      rounds: { type: "string", default: "9" },
    },
  });
  const count = Number(values.count);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new CouldNotMeasureError("--count and --rounds take whole numbers above 0");
  }
  await requireKvm();
  const kernelPath = await ensureGuest("io_loop");
  const binary = await buildC("exit_loop");
  using kvm = Kvm.open();
  const kernel = await Deno.readFile(kernelPath);
  const sides: Side[] = [
    { name: "Denovisor", run: denovisorRunner(kvm, kernel, kernelPath), small: [], large: [] },
    { name: "C", run: cRunner(binary, kernelPath), small: [], large: [] },
  ];

  console.log(
    `exit_roundtrip: µs per port-I/O exit, io_loop.elf count=${count} and count=${
      4 * count
    }, ${rounds} rounds`,
  );
  // Warm-up: loads the Worker's modules and the C binary into the page cache.
  for (const side of sides) await side.run(WARM_UP_COUNT);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      side.small.push(await side.run(count));
      side.large.push(await side.run(4 * count));
    }
    const [deno, c] = sides.map((s) => microsecondsPerExit(s.small[round], s.large[round]));
    console.log(
      `  round ${round + 1} N/4N wall: Denovisor ${fixed(deno.wall)}, C ${fixed(c.wall)} ` +
        `(ratio ${fixed(deno.wall / c.wall, 3)})`,
    );
  }

  const windows = sides.map((side) => windowSummary(side));
  const fastest = sides.map(fromFastestRuns);
  const medians = sides.map(medianOverRounds);
  console.log(`µs per exit${"Denovisor".padStart(35)}${"C".padStart(10)}${"ratio".padStart(10)}`);
  const row = (label: string, [deno, c]: number[]) =>
    console.log(
      `  ${label.padEnd(36)}${fixed(deno).padStart(10)}${fixed(c).padStart(10)}${
        `${fixed(deno / c, 3)}x`.padStart(10)
      }`,
    );
  row(`fastest ${WINDOW_EXITS}-exit window (headline)`, windows.map((w) => w.fastest));
  row(`median ${WINDOW_EXITS}-exit window`, windows.map((w) => w.median));
  row("N/4N, fastest runs, wall", fastest.map((p) => p.wall));
  row("N/4N, fastest runs, CPU", fastest.map((p) => p.cpu));
  row("N/4N, median over rounds, wall", medians.map((p) => p.wall));
  row("N/4N, median over rounds, CPU", medians.map((p) => p.cpu));
  const ratio = windows[0].fastest / windows[1].fastest;
  console.log(
    `Denovisor ${fixed(windows[0].fastest)} µs/exit, C ${fixed(windows[1].fastest)} µs/exit, ` +
      `ratio ${fixed(ratio, 3)}x (target <= ${TARGET_RATIO}x: ${
        ratio <= TARGET_RATIO ? "met" : "not met"
      })`,
  );
}

function windowSummary(side: Side): WindowSummary {
  const traces = [...side.small, ...side.large].map((run) => run.trace);
  const summary = summariseWindows(traces, WINDOW_EXITS);
  if (!summary) {
    throw new CouldNotMeasureError(
      `no ${side.name} run lasted ${WINDOW_EXITS} exits; raise --count`,
    );
  }
  return summary;
}

/**
 * Per-exit cost from the fastest N run and the fastest 4N run: noise only ever adds
 * time, so the fastest runs are the least disturbed.
 */
function fromFastestRuns(side: Side): PerExit {
  const fastest = (runs: LoopRun[]): LoopRun => ({
    seconds: Math.min(...runs.map((r) => r.seconds)),
    cpuSeconds: Math.min(...runs.map((r) => r.cpuSeconds)),
    exits: median(runs.map((r) => r.exits)),
    trace: [],
  });
  return microsecondsPerExit(fastest(side.small), fastest(side.large));
}

function medianOverRounds(side: Side): PerExit {
  const perRound = side.small.map((small, i) => microsecondsPerExit(small, side.large[i]));
  return { wall: median(perRound.map((p) => p.wall)), cpu: median(perRound.map((p) => p.cpu)) };
}

if (import.meta.main) await runBenchmark("exit_roundtrip", main);
