/**
 * A built machine (vmm/builder.ts makes one): `start()` runs it, `ended` settles with the
 * reason it stopped, `close()` tears it down.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import type { Bus } from "../core/bus.ts";
import type { EventLoop } from "../core/event_loop.ts";
import { installKickSignalHandler } from "../core/kick_signal.ts";
import { busAccess, type VmEndSignal } from "../core/machine.ts";
import type { GuestRam } from "../core/memory.ts";
import type { Vcpu } from "../core/vcpu.ts";
import { VcpuThread } from "../core/vcpu_thread.ts";
import { OffThreadVcpu, type VcpuRunner } from "../core/vcpu_off_thread.ts";
import type { VmEndReason } from "../core/vm_end.ts";
import type { Vm } from "../core/vm.ts";
import type { I8042 } from "../devices/legacy/i8042.ts";
import type { Serial16550 } from "../devices/legacy/serial.ts";
import type { DeviceManager } from "./device_manager.ts";
import { noteMachineClosing } from "./stats_hook.ts";
import { takeVcpuWorker, VCPU_WORKER_URL, vcpuWorkerCount } from "./vcpu_workers.ts";
import { localPortBus } from "./local_ports.ts";

/** The vCPU Workers' entry module (scripts/compile.sh includes it in the executable). */
export { VCPU_WORKER_URL };

/**
 * How long `pause()` waits for every vCPU to leave the guest. A kick takes milliseconds;
 * a vCPU still in KVM_RUN after this was never reached by one (see ffi/thread.ts).
 */
export const PAUSE_TIMEOUT_MS = 15_000;

/**
 * Pauses every runner, or, when one has not left the guest within `timeoutMs`, lets them
 * all run again and throws a `timeout` error naming the vCPUs that did not answer: the
 * VM goes on running instead of a pause (a save, a stop) waiting for ever.
 */
export async function pauseAll(
  runners: readonly VcpuRunner[],
  timeoutMs: number = PAUSE_TIMEOUT_MS,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const paused = Promise.all(runners.map((r) => r.pause()));
  const timedOut = await Promise.race([
    paused.then(() => false),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), timeoutMs)),
  ]).finally(() => clearTimeout(timer));
  if (!timedOut) return;
  const stuck = runners.filter((r) => r.state !== "paused" && r.state !== "stopped");
  runners.forEach((r) => r.resume());
  throw new DenovisorError(
    "timeout",
    `Cannot pause the VM: vCPU ${stuck.map((r) => r.vcpu.id).join(", ")} did not leave ` +
      `KVM_RUN within ${timeoutMs / 1000} s (the kick signal did not reach its thread; see ` +
      "the VMM log); the VM goes on running",
  );
}

/** The pieces the builder assembles. */
export interface MachineParts {
  vm: Vm;
  ram: GuestRam;
  vcpus: Vcpu[];
  pio: Bus;
  mmio: Bus;
  loop: EventLoop;
  devices: DeviceManager;
  end: VmEndSignal;
}

/** One vCPU as `Machine.vcpuStats` shows it. */
export interface VcpuRunStats {
  id: number;
  state: string;
  exits: number;
  /** Whether a thread runs this vCPU alone (a Worker): false for an off-thread vCPU. */
  ownThread: boolean;
  /** That thread's Linux id; 0 when there is none, or not yet. */
  tid: number;
}

/** A built VM. `start()` runs it; `ended` settles with the reason it stopped. */
export class Machine {
  readonly vm: Vm;
  readonly ram: GuestRam;
  readonly vcpus: readonly Vcpu[];
  readonly pio: Bus;
  readonly mmio: Bus;
  /** Every device, by id. */
  readonly devices: DeviceManager;
  readonly ended: Promise<VmEndReason>;
  readonly #loop: EventLoop;
  readonly #end: VmEndSignal;
  #threads: VcpuRunner[] = [];
  #closed = false;
  /** Started paused: the vCPU Workers start at the first `resume()`. */
  #startPending = false;
  /** Restored from a state: the virtio transports are kicked when the vCPUs first run. */
  #kickOnRun = false;

  constructor(parts: MachineParts) {
    this.vm = parts.vm;
    this.ram = parts.ram;
    this.vcpus = parts.vcpus;
    this.pio = parts.pio;
    this.mmio = parts.mmio;
    this.devices = parts.devices;
    this.#loop = parts.loop;
    this.#end = parts.end;
    this.ended = parts.end.ended;
  }

  /** The 16550 on COM1 (the caller feeds console input to it, or to `consoleInput`). */
  get serial(): Serial16550 {
    return this.devices.serial;
  }

  /** The keyboard controller, for host-side key presses (Ctrl-Alt-Del). */
  get i8042(): I8042 {
    return this.devices.i8042;
  }

  /** Hands typed bytes to the virtio console when there is one, else to the UART. */
  consoleInput(bytes: Uint8Array): void {
    (this.devices.virtioConsole ?? this.devices.serial).receive(bytes);
  }

  /**
   * Starts the device event loop and every vCPU; with `paused`, the vCPUs wait for the
   * first `resume()` (a restore that starts paused: its vCPUs have not run at all).
   */
  start(options: { paused?: boolean } = {}): void {
    installKickSignalHandler();
    void this.#loop.start();
    if (options.paused) {
      this.#startPending = true;
      return;
    }
    this.#runVcpus();
  }

  /**
   * Marks a machine whose devices were restored from a state: a restored virtio device
   * serves nothing until kicked (the driver kicked before the save), so every transport
   * is kicked just before the vCPUs first run.
   */
  markRestored(): void {
    this.#kickOnRun = true;
  }

  /** Whether no vCPU runs guest code: paused, started paused, or not started. */
  get isPaused(): boolean {
    return this.#threads.every((t) => t.state === "paused");
  }

  /**
   * Holds the device event loop (no device serves a queue or receives a frame) until
   * the returned function is called: a save takes device state and RAM at one instant.
   */
  holdDevices(): () => void {
    return this.#loop.hold();
  }

  #runVcpus(): void {
    if (this.#kickOnRun) {
      this.#kickOnRun = false;
      for (const [, entry] of this.devices.entries()) {
        if ("transport" in entry) entry.transport.kick();
      }
    }
    const serve = busAccess(this.pio, this.mmio);
    // vCPU 0 (by default) runs on a Worker of its own, in a synchronous loop: the fast
    // exit path. The others run off-thread from this thread (core/vcpu_off_thread.ts):
    // a Worker per vCPU would cost a V8 isolate each (see bench/README.md).
    const workers = vcpuWorkerCount(this.vcpus.length);
    this.#threads = this.vcpus.map((vcpu, index): VcpuRunner => {
      const thread = index < workers
        ? new VcpuThread(vcpu, this.ram.ranges, serve, takeVcpuWorker() ?? VCPU_WORKER_URL)
        : new OffThreadVcpu(vcpu, this.ram.memory, serve, localPortBus);
      thread.done.then((reason) => reason && this.#end.end(reason));
      return thread;
    });
  }

  /** Ends the VM from the host side (a user's stop, a console escape). */
  stop(source: string): void {
    this.#end.end({ kind: "stopped", source });
  }

  /**
   * Pauses every vCPU; resolves once none runs guest code. Throws a `timeout` error (and
   * the vCPUs run on) if one does not leave the guest within `PAUSE_TIMEOUT_MS`.
   */
  async pause(): Promise<void> {
    await pauseAll(this.#threads);
  }

  resume(): void {
    if (this.#closed) return; // a late SIGCONT or resume request must not start a closed VM
    if (this.#startPending) {
      this.#startPending = false;
      this.#runVcpus();
      return;
    }
    this.#threads.forEach((t) => t.resume());
  }

  /**
   * vCPU run state and exit counts, per vCPU, and the thread of its own, if it has one
   * (`ownThread`; `tid` 0 until it is known), whose CPU time is the vCPU's.
   */
  get vcpuStats(): VcpuRunStats[] {
    return this.#threads.map((t) => ({
      id: t.vcpu.id,
      state: t.state,
      exits: t.exits,
      ownThread: t.ownThread,
      tid: t.tid,
    }));
  }

  /** Stops all vCPUs and releases the VM, its devices and its memory; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#threads.map((t) => t.stop()));
    noteMachineClosing(this); // DENOVISOR_STATS: guest RAM's Rss while it is still mapped
    this.devices.close();
    await this.#loop.stop();
    this.vcpus.forEach((v) => v.close());
    this.vm.close();
    this.ram.close();
  }
}
