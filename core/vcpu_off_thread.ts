/**
 * A vCPU run without a Worker of its own: its KVM_RUN is an off-thread FFI call (one of
 * Deno's blocking-pool threads enters the guest) and its exits are handled on the thread
 * that started it, between that thread's other work. A Worker is a whole V8 isolate (9-12
 * MiB here); this costs a pool thread and a few objects, so a machine's vCPUs after the
 * first run this way (the first keeps its Worker and its synchronous fast loop:
 * core/vcpu_worker.ts).
 *
 * The price is latency per exit: each KVM_RUN is a hand-off to a pool thread and back
 * through a Promise, and the exit waits for the thread's event loop. Device accesses are
 * served in place (this is the main thread, where the buses live), so no mailbox.
 *
 * CPU time: no thread is this vCPU's own (a KVM_RUN takes whichever pool thread is free,
 * and that thread runs other vCPUs' KVM_RUNs and other blocking work too), so its CPU
 * time is not known and `ownThread` is false: a pool thread's time is not passed off as
 * the vCPU's.
 *
 * Kicks: a pool thread's id is not known in advance, so `pause()`/`stop()` set
 * immediate_exit (a KVM_RUN not yet entered returns at once) and signal the threads /proc
 * shows blocked in KVM_RUN on this vCPU's fd or running on a CPU (a vCPU in guest code
 * shows as "running", with no system call), re-kicking until the loop answers, as
 * `VcpuThread` does. Another thread that gets the signal handles it and goes on (vCPU 0's
 * Worker retries its KVM_RUN). errno is lost with the pool thread: a kick is recognised by what KVM
 * leaves in kvm_run (exit_reason KVM_EXIT_INTR on a signal) or by our own immediate_exit.
 *
 * @module
 */

import { kvmRun, kvmRunOffThread } from "../ffi/kvm/vcpu_run.ts";
import { KVM } from "../ffi/kvm/ioctls.ts";
import { KVM_EXIT, kvmExitName, RUN } from "../ffi/kvm/run.ts";
import { SIGUSR2 } from "../ffi/libc_symbols.ts";
import { signalThread, threadsMaybeInIoctl } from "../ffi/thread.ts";
import { decodeExit } from "./vcpu_exit.ts";
import { type ExitContext, handleExit } from "./exit_handler.ts";
import { faultReport } from "./fault_report.ts";
import { installKickSignalHandler } from "./kick_signal.ts";
import type { GuestMemory } from "./guest_memory.ts";
import type { Vcpu } from "./vcpu.ts";
import type { AccessHandler } from "./vcpu_thread.ts";
import type { LocalPortBusFactory } from "./vcpu_worker.ts";
import type { VmEndReason } from "./vm_end.ts";

/** What a machine needs of a running vCPU, however it runs (Worker or off-thread). */
export interface VcpuRunner {
  readonly vcpu: Vcpu;
  /** Settles when the vCPU has left its run loop: with a reason if the VM must end. */
  readonly done: Promise<VmEndReason | undefined>;
  /**
   * Whether a thread runs this vCPU and nothing else (a Worker's), so that its CPU time
   * is the vCPU's. False for an off-thread vCPU: its CPU time is not known.
   */
  readonly ownThread: boolean;
  /** The Linux thread id of the vCPU's own thread, for /proc CPU times; 0 when none (yet). */
  readonly tid: number;
  /** Exits handled so far. */
  readonly exits: number;
  readonly state: "starting" | "running" | "paused" | "stopped";
  /** Asks the vCPU to pause and waits until it has left the guest. */
  pause(): Promise<void>;
  /** Lets a paused vCPU run again. */
  resume(): void;
  /** Stops the vCPU; idempotent. */
  stop(): Promise<void>;
}

type Request = "run" | "pause" | "stop";

/** Written to exit_reason before each KVM_RUN: still there after -1, KVM gave no reason. */
const NO_EXIT_REASON = 0xffff_ffff;
/** Failed KVM_RUNs in a row with no kick to explain them before the vCPU gives up. */
const MAX_UNEXPLAINED_FAILURES = 100;
/** A kick can land just before the vCPU blocks again: re-kick after this long. */
const REKICK_MS = 20;

/**
 * The error of a vCPU whose KVM_RUN failed `count` times in a row: what KVM left in
 * exit_reason on the last failure (KVM_EXIT_MEMORY_FAULT with EFAULT, say) is all there
 * is to go on, since errno stayed on the pool thread.
 */
export function unexplainedFailures(count: number, exitReason: number): string {
  const reason = exitReason === NO_EXIT_REASON
    ? "KVM left no exit reason"
    : `exit reason ${kvmExitName(exitReason)}`;
  return `ioctl(KVM_RUN) failed ${count} times in a row, the last with ${reason} ` +
    "(off-thread: the error number is not known)";
}

/** One vCPU run by off-thread KVM_RUN calls from the thread that created it. */
export class OffThreadVcpu implements VcpuRunner {
  readonly vcpu: Vcpu;
  readonly done: Promise<VmEndReason | undefined>;
  #request: Request = "run";
  #state: VcpuRunner["state"] = "starting";
  #exits = 0;
  /** Wakes whoever waits for the next change of request or state. */
  #changed: Array<() => void> = [];

  /**
   * Starts running `vcpu` at once. `handler` serves the accesses no local port claims;
   * `memory` is guest RAM, read for fault reports.
   */
  constructor(
    vcpu: Vcpu,
    memory: GuestMemory,
    handler: AccessHandler,
    localPortBus: LocalPortBusFactory,
  ) {
    this.vcpu = vcpu;
    installKickSignalHandler(); // a kick must interrupt KVM_RUN, not kill the process
    const ctx: ExitContext = {
      vcpu: vcpu.id,
      localPorts: localPortBus((end) => ctx.pendingEnd = end),
      forward: (space, isWrite, address, data) => {
        try {
          if (!isWrite) data.fill(0xff);
          handler(space, isWrite, address, data);
        } catch (error) {
          console.error(`vCPU ${vcpu.id}: device access failed: ${error}`);
        }
      },
      fault: (instruction) => faultReport(vcpu, memory, instruction),
    };
    this.done = this.#run(ctx).catch((error): VmEndReason => ({
      kind: "vcpuError",
      vcpu: vcpu.id,
      message: String(error),
    })).finally(() => this.#setState("stopped"));
  }

  get ownThread(): false {
    return false;
  }

  /** Always 0: the vCPU has no thread of its own (see the module doc). */
  get tid(): number {
    return 0;
  }

  get exits(): number {
    return this.#exits;
  }

  get state(): VcpuRunner["state"] {
    return this.#state;
  }

  async pause(): Promise<void> {
    this.#setRequest("pause");
    await this.#kickUntil(() => this.#state === "paused" || this.#state === "stopped");
  }

  resume(): void {
    if (this.#request === "pause") this.#setRequest("run");
  }

  async stop(): Promise<void> {
    this.#setRequest("stop");
    await Promise.race([this.done, this.#kickUntil(() => this.#state === "stopped")]);
    await this.done;
  }

  async #run(ctx: ExitContext): Promise<VmEndReason | undefined> {
    const fd = this.vcpu.fd;
    const run = this.vcpu.runBytes();
    const view = new DataView(run.buffer, run.byteOffset, run.byteLength);
    this.#setState("running");
    let unexplained = 0;
    let lastReason = NO_EXIT_REASON;
    for (;;) {
      if (this.#request === "stop") return undefined;
      if (this.#request === "pause") {
        await this.#waitWhilePaused(run);
        continue;
      }
      view.setUint32(RUN.EXIT_REASON, NO_EXIT_REASON, true);
      if (await kvmRunOffThread(fd) < 0) {
        const kicked = view.getUint32(RUN.EXIT_REASON, true) === KVM_EXIT.INTR ||
          run[RUN.IMMEDIATE_EXIT] !== 0;
        if (kicked) {
          // A kick whose request was withdrawn (resume before the pause was seen).
          if (this.#request === "run") run[RUN.IMMEDIATE_EXIT] = 0;
          unexplained = 0;
          continue;
        }
        // EINTR from a signal that was not ours, or EAGAIN: retried, up to a point.
        lastReason = view.getUint32(RUN.EXIT_REASON, true);
        if (++unexplained < MAX_UNEXPLAINED_FAILURES) continue;
        return {
          kind: "vcpuError",
          vcpu: this.vcpu.id,
          message: unexplainedFailures(unexplained, lastReason),
        };
      }
      unexplained = 0;
      this.#exits = (this.#exits + 1) | 0;
      const outcome = handleExit(decodeExit(run, view), ctx);
      if (outcome.kind === "end") return outcome.reason;
    }
  }

  async #waitWhilePaused(run: Uint8Array): Promise<void> {
    // As core/vcpu_worker.ts: KVM_RUN with immediate_exit set completes the I/O of the
    // last exit and returns at once, so the paused vCPU's state can be saved. It does
    // not block, so it runs here, synchronously.
    run[RUN.IMMEDIATE_EXIT] = 1;
    kvmRun(this.vcpu.fd);
    this.#setState("paused");
    while (this.#request === "pause") await this.#nextChange();
    if (this.#request === "stop") return;
    this.vcpu.notifyPaused();
    run[RUN.IMMEDIATE_EXIT] = 0;
    this.#setState("running");
  }

  async #kickUntil(reached: () => boolean): Promise<void> {
    while (!reached()) {
      this.vcpu.setImmediateExit(true);
      for (const tid of threadsMaybeInIoctl(this.vcpu.fd, KVM.RUN)) signalThread(tid, SIGUSR2);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#nextChange(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, REKICK_MS)),
      ]);
      clearTimeout(timer);
    }
  }

  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#changed.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#changed.splice(0)) wake();
  }

  #setRequest(request: Request): void {
    if (this.#request === "stop") return; // stopping is final
    this.#request = request;
    this.#wake();
  }

  #setState(state: VcpuRunner["state"]): void {
    this.#state = state;
    this.#wake();
  }
}
