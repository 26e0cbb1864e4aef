/**
 * Restore latency: from the VMM process being ready (KVM open, state file on disk) to the
 * restored machine's vCPUs running — state file read and checked, memory file mapped,
 * machine built, KVM and device state loaded, vCPUs running on their Workers — for a
 * 256 MiB and a 2 GiB guest (the `ticks` guest, saved after it has run a little). Two
 * figures: "warm", where the VMM's vCPU Workers were started before (as `denovisor vmm`
 * does when its config says restore, vmm/vcpu_workers.ts; they get 1 s to load, the time
 * a VMM process takes to come up), and "cold", where the restore starts them. The
 * baseline, in the same run and process, is a fresh build of the same config to its vCPUs
 * running (boot files already read, Workers started by the build). Restore maps the
 * memory file instead of reading it, so its time should not grow with RAM size; the
 * issue's target is <= 10 ms (Firecracker publishes single-digit milliseconds).
 *
 * Usage: deno run -A bench/restore.ts [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { Kvm } from "../core/kvm.ts";
import type { ConsoleOutput } from "../devices/console/console.ts";
import { type BootImage, build, loadBootImage, restore } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import { dropVcpuWorkers, prestartVcpuWorkers } from "../vmm/vcpu_workers.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import {
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  requireKvm,
  runBenchmark,
} from "./_support.ts";

const MIB = 1024 * 1024;
const SIZES_MIB = [256, 2048];
const TARGET_MS = 10;

/** Collects the guest's output, to see it run before the save. */
class Output implements ConsoleOutput {
  text = "";
  write(bytes: Uint8Array): void {
    this.text += new TextDecoder().decode(bytes);
  }
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new CouldNotMeasureError(`${what} did not happen`);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

const allRunning = (machine: Machine) =>
  machine.vcpuStats.length > 0 && machine.vcpuStats.every((v) => v.state === "running");

async function closeMachine(machine: Machine): Promise<void> {
  machine.stop("benchmark");
  await machine.close();
}

/** Boots the guest, lets it tick, saves it to `stateFile`. */
async function prepareState(
  kvm: Kvm,
  config: VmmMachineConfig,
  boot: BootImage,
  stateFile: string,
): Promise<number> {
  const output = new Output();
  const machine = build(config, { kvm, console: output, boot });
  try {
    machine.start();
    await until(() => /tick 20\r?\n/.test(output.text), 60_000, "the guest's tick 20");
    await machine.pause();
    const saved = await saveMachine(machine, config, kvm, { stateFile });
    return saved.memoryDataBytes;
  } finally {
    await closeMachine(machine);
  }
}

/** Milliseconds from `make()` being called to every vCPU of its machine running. */
async function timeToRunning(make: () => Machine | Promise<Machine>): Promise<number> {
  const started = performance.now();
  const machine = await make();
  try {
    machine.start();
    await until(() => allRunning(machine), 30_000, "vCPUs running");
    return performance.now() - started;
  } finally {
    await closeMachine(machine);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { runs: { type: "string" } } });
  const runs = Number(values.runs ?? 7);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number >= 1");
  await requireKvm();
  const kernel = await ensureGuest("ticks");
  using kvm = Kvm.open();
  const dir = await Deno.makeTempDir({ prefix: "denovisor-bench-restore-" });
  console.log(`restore latency (median of ${runs}; target <= ${TARGET_MS} ms):`);
  try {
    for (const sizeMiB of SIZES_MIB) {
      const config: VmmMachineConfig = {
        vcpus: 1,
        memoryBytes: sizeMiB * MIB,
        boot: { kind: "linux", kernel, cmdline: "" },
        disks: [],
        nics: [],
        balloon: false,
      };
      const boot = await loadBootImage(config.boot);
      const stateFile = join(dir, `ticks-${sizeMiB}.state`);
      const dataBytes = await prepareState(kvm, config, boot, stateFile);
      const context = { kvm, console: new Output(), boot };
      const warm: number[] = [];
      const cold: number[] = [];
      const builds: number[] = [];
      // Interleaved, so that a slow moment of the host hits every side alike.
      for (let run = 0; run < runs; run++) {
        prestartVcpuWorkers(config.vcpus);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        try {
          warm.push(await timeToRunning(() => restore(config, { stateFile }, context)));
        } finally {
          dropVcpuWorkers();
        }
        cold.push(await timeToRunning(() => restore(config, { stateFile }, context)));
        builds.push(await timeToRunning(() => build(config, context)));
      }
      const w = median(warm);
      const c = median(cold);
      const b = median(builds);
      console.log(
        `  ${String(sizeMiB).padStart(4)} MiB guest (${fixed(dataBytes / MIB, 1)} MiB of RAM ` +
          `in use): restore with warm Workers ${fixed(w)} ms (${fixed(Math.min(...warm))}-` +
          `${fixed(Math.max(...warm))}), cold ${fixed(c)} ms, fresh build ${fixed(b)} ms; ratio ` +
          `warm restore/build ${fixed(w / b)}x; target ${w <= TARGET_MS ? "met" : "not met"}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await runBenchmark("restore", main);
