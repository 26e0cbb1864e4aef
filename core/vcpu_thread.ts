/**
 * The main thread's side of one vCPU Worker: starts it, serves the device accesses it
 * hands over, and pauses, resumes or stops it (a kick: immediate_exit plus a signal to
 * its thread, so a vCPU sleeping in the kernel wakes up too).
 *
 * @module
 */

import { signalThread } from "../ffi/thread.ts";
import { SIGUSR2 } from "../ffi/libc_symbols.ts";
import type { Space } from "./exit_handler.ts";
import type { MappedRange } from "./memory.ts";
import type { Vcpu } from "./vcpu.ts";
import type { VcpuState, VcpuStateSupport } from "./vcpu_state.ts";
import { DenovisorError } from "../common/errors.ts";
import { MAILBOX, RUN_REQUEST, SLOT, SPACE, VcpuChannel, WORKER_STATE } from "./vcpu_channel.ts";
import type { VcpuWorkerDone, VcpuWorkerInit } from "./vcpu_worker.ts";
import type { VmEndReason } from "./vm_end.ts";

/** Serves an access forwarded by a vCPU: fill `data` for reads, consume it for writes. */
export type AccessHandler = (
  space: Space,
  isWrite: boolean,
  address: number,
  data: Uint8Array,
) => void;

/** A vCPU's state was asked for (or given) while it runs. */
export class VcpuNotPausedError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** One running vCPU Worker. */
export class VcpuThread {
  readonly vcpu: Vcpu;
  readonly #channel = new VcpuChannel();
  readonly #worker: Worker;
  readonly #done: Promise<VmEndReason | undefined>;
  #closed = false;

  /**
   * Starts a Worker from `worker`, a module that calls `serveVcpuWorker()` of
   * core/vcpu_worker.ts (the VMM's is vmm/vcpu_worker_main.ts), and runs `vcpu` on it;
   * or runs it on `worker`, such a Worker started earlier that has had no message yet.
   */
  constructor(
    vcpu: Vcpu,
    ram: readonly MappedRange[],
    handler: AccessHandler,
    worker: URL | Worker,
  ) {
    this.vcpu = vcpu;
    this.#worker = worker instanceof Worker
      ? worker
      : new Worker(worker, { type: "module", name: `vcpu${vcpu.id}` });
    this.#done = new Promise((resolve) => {
      this.#worker.onmessage = (event: MessageEvent<VcpuWorkerDone>) => {
        this.#closeMailbox();
        resolve(event.data.reason);
      };
      this.#worker.onerror = (event) => {
        event.preventDefault();
        this.#closeMailbox();
        resolve({ kind: "vcpuError", vcpu: vcpu.id, message: event.message });
      };
    });
    this.#serve(handler);
    const init: VcpuWorkerInit = {
      id: vcpu.id,
      fd: vcpu.fd,
      run: vcpu.runArea,
      ram: [...ram],
      channel: this.#channel.buffer,
    };
    this.#worker.postMessage(init);
  }

  /** Settles when the Worker has left its run loop: with a reason if the VM must end. */
  get done(): Promise<VmEndReason | undefined> {
    return this.#done;
  }

  /** The Worker runs this vCPU alone: its thread's CPU time is the vCPU's. */
  get ownThread(): true {
    return true;
  }

  /** The Linux thread id of the vCPU's thread (0 until it started), for /proc CPU times. */
  get tid(): number {
    return Atomics.load(this.#channel.slots, SLOT.TID);
  }

  /** Exits handled so far (wraps at 2^31). */
  get exits(): number {
    return Atomics.load(this.#channel.slots, SLOT.EXITS);
  }

  get state(): "starting" | "running" | "paused" | "stopped" {
    return (["starting", "running", "paused", "stopped"] as const)[this.#channel.state];
  }

  /** Asks the vCPU to pause and waits until it has left the guest. */
  async pause(): Promise<void> {
    this.#channel.setRequest(RUN_REQUEST.PAUSE);
    await this.#kickUntil((s) => s === WORKER_STATE.PAUSED || s === WORKER_STATE.STOPPED);
  }

  /** Lets a paused vCPU run again. */
  resume(): void {
    this.#channel.setRequest(RUN_REQUEST.RUN);
  }

  /**
   * The state of the paused vCPU. The ioctls run on this thread: the Worker is parked in
   * Atomics.wait until `resume()`, which only this thread can call, so nothing else
   * touches the vCPU fd meanwhile (KVM allows any thread's ioctls on a vCPU that is not
   * in KVM_RUN, and Cloud Hypervisor saves its vCPUs the same way).
   */
  save(support: VcpuStateSupport): VcpuState {
    this.#requirePaused("save");
    return this.vcpu.save(support);
  }

  /** Loads a saved state into the paused vCPU (see `save` for why on this thread). */
  restore(state: unknown, support: VcpuStateSupport): void {
    this.#requirePaused("restore");
    this.vcpu.restore(state, support);
  }

  #requirePaused(what: string): void {
    if (this.#channel.state !== WORKER_STATE.PAUSED) {
      throw new VcpuNotPausedError(
        `Cannot ${what} the state of vCPU ${this.vcpu.id}: it is ${this.state}; pause the machine first`,
      );
    }
  }

  /** Stops the vCPU and its Worker; idempotent. */
  async stop(): Promise<void> {
    this.#channel.setRequest(RUN_REQUEST.STOP);
    await Promise.race([
      this.#done,
      this.#kickUntil((s) => s === WORKER_STATE.STOPPED),
    ]);
    await this.#done;
    this.#worker.terminate();
  }

  /** Kicks the vCPU until its state satisfies `reached`. */
  async #kickUntil(reached: (state: number) => boolean): Promise<void> {
    const slots = this.#channel.slots;
    while (!reached(this.#channel.state)) {
      const state = this.#channel.state;
      this.vcpu.setImmediateExit(true);
      const tid = Atomics.load(slots, SLOT.TID);
      if (tid !== 0) signalThread(tid, SIGUSR2);
      // A kick can land just before the vCPU blocks again; re-kick after a short wait.
      const wait = Atomics.waitAsync(slots, SLOT.STATE, state, 20);
      if (wait.async) await wait.value;
    }
  }

  /** Serves forwarded accesses until the Worker is done. */
  async #serve(handler: AccessHandler): Promise<void> {
    const slots = this.#channel.slots;
    const data = this.#channel.data;
    while (!this.#closed) {
      const mailbox = Atomics.load(slots, SLOT.MAILBOX);
      if (mailbox === MAILBOX.REQUEST) {
        const size = slots[SLOT.SIZE];
        const access = data.subarray(0, size);
        const isWrite = slots[SLOT.IS_WRITE] === 1;
        const space: Space = slots[SLOT.SPACE] === SPACE.PIO ? "pio" : "mmio";
        try {
          if (!isWrite) access.fill(0xff);
          handler(space, isWrite, this.#channel.address, access);
        } catch (error) {
          console.error(`vCPU ${this.vcpu.id}: device access failed: ${error}`);
        }
        Atomics.store(slots, SLOT.MAILBOX, MAILBOX.ANSWERED);
        Atomics.notify(slots, SLOT.MAILBOX);
        continue;
      }
      const wait = Atomics.waitAsync(slots, SLOT.MAILBOX, mailbox);
      if (wait.async) await wait.value;
    }
  }

  #closeMailbox(): void {
    this.#closed = true;
    Atomics.store(this.#channel.slots, SLOT.MAILBOX, MAILBOX.CLOSED);
    Atomics.notify(this.#channel.slots, SLOT.MAILBOX);
  }
}
