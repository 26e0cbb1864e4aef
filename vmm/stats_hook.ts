/**
 * `DENOVISOR_STATS=PATH`: an exact memory report for benchmarks. When the variable is set,
 * each machine, right before it unmaps guest RAM, records the resident part of its RAM
 * mappings (from /proc/self/smaps) and its vCPU exits; at process exit the VMM writes
 * `{vmHwmKiB, vmRssKiB, guestRssKiB, exits, wallSeconds, machines}` to PATH as JSON.
 * Sampling /proc from outside is racy for a guest that exits at once; this is not.
 *
 * Unset, it costs one environment read per machine and nothing else.
 *
 * @module
 */

/** One host mapping of guest RAM (core/memory.ts `MappedRange`). */
export interface RamMapping {
  readonly hostAddress: bigint;
  readonly size: number;
}

/** What the hook needs of a machine (vmm/machine.ts `Machine`). */
export interface StatsSource {
  readonly ram: { readonly ranges: readonly RamMapping[] };
  readonly vcpuStats: ReadonlyArray<{ readonly exits: number }>;
}

/** The JSON written to `DENOVISOR_STATS`. */
export interface VmmStats {
  /** Peak resident set of the process (VmHWM), guest pages included. */
  vmHwmKiB: number;
  /** Resident set at exit (VmRSS); guest RAM is unmapped by then. */
  vmRssKiB: number;
  /** Largest resident part of guest RAM seen when a machine closed (its pages only grow). */
  guestRssKiB: number;
  /** vCPU exits of all machines (reboots included). */
  exits: number;
  /** Seconds from process start to the report. */
  wallSeconds: number;
  /** Machines that closed (1 plus reboots). */
  machines: number;
}

/** A `VmXxx:   123 kB` field of /proc/self/status, in KiB; undefined when absent. */
export function statusFieldKiB(status: string, field: string): number | undefined {
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
  return match ? Number(match[1]) : undefined;
}

/**
 * The Rss (KiB) of every smaps mapping that lies inside one of `mappings`. A RAM range
 * can be split into several VMAs (madvise, transparent huge pages), so they are summed
 * by address range rather than matched by size.
 */
export function guestRssKiB(smaps: string, mappings: readonly RamMapping[]): number {
  const ranges = mappings.map((m) => [m.hostAddress, m.hostAddress + BigInt(m.size)] as const);
  let inside = false;
  let total = 0;
  for (const line of smaps.split("\n")) {
    const header = line.match(/^([0-9a-f]+)-([0-9a-f]+) /);
    if (header) {
      const start = BigInt(`0x${header[1]}`);
      const end = BigInt(`0x${header[2]}`);
      inside = ranges.some(([low, high]) => start >= low && end <= high);
      continue;
    }
    if (!inside) continue;
    const rss = line.match(/^Rss:\s+(\d+) kB$/);
    if (rss) total += Number(rss[1]);
  }
  return total;
}

/** Collects the figures of a process's machines and writes them at exit. */
export class StatsRecorder {
  readonly #path: string;
  #guestRssKiB = 0;
  #exits = 0;
  #machines = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** Records a machine about to close (its RAM still mapped). */
  noteMachine(source: StatsSource): void {
    const smaps = Deno.readTextFileSync("/proc/self/smaps");
    this.#guestRssKiB = Math.max(this.#guestRssKiB, guestRssKiB(smaps, source.ram.ranges));
    this.#exits += source.vcpuStats.reduce((sum, vcpu) => sum + vcpu.exits, 0);
    this.#machines++;
  }

  /** The report as of now. */
  report(): VmmStats {
    const status = Deno.readTextFileSync("/proc/self/status");
    return {
      vmHwmKiB: statusFieldKiB(status, "VmHWM") ?? 0,
      vmRssKiB: statusFieldKiB(status, "VmRSS") ?? 0,
      guestRssKiB: this.#guestRssKiB,
      exits: this.#exits,
      wallSeconds: performance.now() / 1000,
      machines: this.#machines,
    };
  }

  /** Writes the report to the path; a failure is said on stderr, never thrown (exit path). */
  write(): void {
    try {
      Deno.writeTextFileSync(this.#path, JSON.stringify(this.report()) + "\n");
    } catch (error) {
      console.error(
        `denovisor: cannot write DENOVISOR_STATS to ${this.#path}: ${(error as Error).message}`,
      );
    }
  }
}

let recorder: StatsRecorder | null | undefined;

/** The process's recorder when DENOVISOR_STATS is set; it writes its file at exit. */
function processRecorder(): StatsRecorder | undefined {
  if (recorder === undefined) {
    const path = Deno.env.get("DENOVISOR_STATS");
    recorder = path ? new StatsRecorder(path) : null;
    // "unload" runs on a normal end and on Deno.exit() (cli/main.ts exits that way).
    if (recorder) globalThis.addEventListener("unload", () => recorder?.write());
  }
  return recorder ?? undefined;
}

/**
 * Called by a machine right before it unmaps guest RAM. Never throws: a report is not
 * worth a VMM that fails to close.
 */
export function noteMachineClosing(source: StatsSource): void {
  try {
    processRecorder()?.noteMachine(source);
  } catch (error) {
    console.error(`denovisor: DENOVISOR_STATS: ${(error as Error).message}`);
  }
}
