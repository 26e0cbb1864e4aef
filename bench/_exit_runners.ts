/**
 * The two sides of bench/exit_roundtrip.ts: io_loop.elf run by Denovisor's machine
 * builder in this process, and by the C baseline bench/c/exit_loop.c. Each run reports
 * its wall and CPU time, its exit count and an exit trace.
 *
 * @module
 */

import process from "node:process";
import { NullConsole } from "../devices/console/null_console.ts";
import type { Kvm } from "../core/kvm.ts";
import { buildMachine } from "../vmm/builder.ts";
import { describeEnd } from "../core/vm_end.ts";
import type { TracePoint } from "./_exit_trace.ts";
import { CouldNotMeasureError, runQuiet } from "./_support.ts";

/** Guest RAM of both sides, in MiB. */
export const GUEST_MEMORY_MIB = 256;
/** How often the main thread reads the vCPU's exit counter for the trace. */
const TRACE_INTERVAL_MS = 5;

/** One timed run of io_loop. */
export interface LoopRun {
  /** Wall-clock time. */
  seconds: number;
  /** CPU time of the whole VMM process (user + system) over the same span. */
  cpuSeconds: number;
  /** Exits the vCPU took (port 0x80 writes plus the guest's boot and serial exits). */
  exits: number;
  /** (seconds since the start, exits so far) while the vCPU ran. */
  trace: TracePoint[];
}

/** Runs io_loop with `count` writes; resolves with its times and exit count. */
export type LoopRunner = (count: number) => Promise<LoopRun>;

/** Microseconds per exit, wall and CPU. */
export interface PerExit {
  wall: number;
  cpu: number;
}

/**
 * Microseconds per exit from a run of N and a run of 4N writes: the extra time over the
 * extra exits, so the start-up cost common to both drops out.
 */
export function microsecondsPerExit(small: LoopRun, large: LoopRun): PerExit {
  const exits = large.exits - small.exits;
  if (exits <= 0) {
    throw new CouldNotMeasureError(
      `the longer run took ${large.exits} exits, not more than the shorter run's ${small.exits}`,
    );
  }
  return {
    wall: (large.seconds - small.seconds) / exits * 1e6,
    cpu: (large.cpuSeconds - small.cpuSeconds) / exits * 1e6,
  };
}

/** Process CPU time (user + system) in seconds. */
function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/**
 * Denovisor: `buildMachine` as `denovisor run` builds it, timed from `start()` (which
 * starts the vCPU Worker) to the end of the VM; the trace polls the vCPU's exit counter.
 */
export function denovisorRunner(kvm: Kvm, kernel: Uint8Array, kernelPath: string): LoopRunner {
  return async (count) => {
    const machine = buildMachine(kvm, {
      kernel,
      kernelPath,
      cmdline: `count=${count}`,
      memoryBytes: GUEST_MEMORY_MIB * 1024 * 1024,
      cpus: 1,
      console: new NullConsole(),
    });
    try {
      const trace: TracePoint[] = [];
      const start = performance.now();
      const cpuStart = processCpuSeconds();
      machine.start();
      // The trace starts at the first exit, as the C side's does: Worker start-up is not
      // the cost of an exit.
      const poll = setInterval(() => {
        const exits = machine.vcpuStats[0].exits;
        if (exits > 0) trace.push([(performance.now() - start) / 1000, exits]);
      }, TRACE_INTERVAL_MS);
      const reason = await machine.ended;
      const seconds = (performance.now() - start) / 1000;
      const cpuSeconds = processCpuSeconds() - cpuStart;
      clearInterval(poll);
      if (reason.kind !== "debugExit" || reason.status !== 0) {
        throw new CouldNotMeasureError(`io_loop under Denovisor: ${describeEnd(reason)}`);
      }
      return { seconds, cpuSeconds, exits: machine.vcpuStats[0].exits, trace };
    } finally {
      await machine.close();
    }
  };
}

/** The C baseline, which times itself from its first KVM_RUN to the debug exit. */
export function cRunner(binary: string, kernelPath: string): LoopRunner {
  return async (count) => {
    const result = await runQuiet(binary, [kernelPath, `count=${count}`, `${GUEST_MEMORY_MIB}`]);
    if (result.code !== 0) {
      throw new CouldNotMeasureError(`${binary} failed (status ${result.code}): ${result.stderr}`);
    }
    const report = JSON.parse(result.stdout) as {
      status: number;
      exits: number;
      postCodeExits: number;
      runSeconds: number;
      runCpuSeconds: number;
      trace: TracePoint[];
    };
    if (report.status !== 0 || report.postCodeExits !== count) {
      throw new CouldNotMeasureError(`${binary} reported ${result.stdout.slice(0, 200)}`);
    }
    return {
      seconds: report.runSeconds,
      cpuSeconds: report.runCpuSeconds,
      exits: report.exits,
      trace: report.trace,
    };
  };
}
