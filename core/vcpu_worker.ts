/// <reference lib="deno.worker" />
/**
 * The body of one vCPU thread: calls KVM_RUN synchronously, handles each exit on this
 * thread, hands device accesses it cannot serve to the main thread through the channel,
 * and obeys pause/resume/stop requests. Started by `VcpuThread`; the Worker's entry module
 * (vmm/vcpu_worker_main.ts) calls `serveVcpuWorker` with the ports this thread serves
 * itself, so that core names no device.
 *
 * @module
 */

import { errno } from "../ffi/libc.ts";
import { currentThreadId } from "../ffi/thread.ts";
import { kvmRun } from "../ffi/kvm/vcpu_run.ts";
import { EAGAIN, EINTR, SyscallError } from "../ffi/errno.ts";
import { RUN } from "../ffi/kvm/run.ts";
import { decodeExit } from "./vcpu_exit.ts";
import { type ExitContext, handleExit, type Space } from "./exit_handler.ts";
import { MAILBOX, RUN_REQUEST, SLOT, SPACE, VcpuChannel, WORKER_STATE } from "./vcpu_channel.ts";
import { GuestRam, type MappedRange } from "./memory.ts";
import { Vcpu } from "./vcpu.ts";
import { faultReport } from "./fault_report.ts";
import type { Bus } from "./bus.ts";
import type { VmEndReason } from "./vm_end.ts";

/** The message that starts a vCPU Worker. */
export interface VcpuWorkerInit {
  id: number;
  fd: number;
  run: { pointer: bigint; size: number };
  ram: MappedRange[];
  channel: SharedArrayBuffer;
}

/** The Worker's last message. */
export interface VcpuWorkerDone {
  type: "done";
  /** Why the VM must end, or undefined when the vCPU was asked to stop. */
  reason?: VmEndReason;
}

/**
 * The port-I/O devices a vCPU thread serves itself (POST code, debug exit); `onEnd` is how
 * one of them ends the VM.
 */
export type LocalPortBusFactory = (onEnd: (reason: VmEndReason) => void) => Bus;

/** Makes this Worker a vCPU thread: it runs the vCPU its first message names. */
export function serveVcpuWorker(localPortBus: LocalPortBusFactory): void {
  // Opens libc (Deno.dlopen binds every symbol: milliseconds) now, while the Worker
  // waits, not after it is handed a vCPU: a restore's pre-started Worker then runs its
  // vCPU 2-7 ms after the hand-off instead of 19-43 (bench/README.md, restore breakdown).
  currentThreadId();
  self.onmessage = (event: MessageEvent<VcpuWorkerInit>) => {
    self.onmessage = null;
    let reason: VmEndReason | undefined;
    try {
      reason = runVcpu(event.data, localPortBus);
    } catch (error) {
      reason = { kind: "vcpuError", vcpu: event.data.id, message: String(error) };
    }
    new VcpuChannel(event.data.channel).setState(WORKER_STATE.STOPPED);
    self.postMessage({ type: "done", reason } satisfies VcpuWorkerDone);
  };
}

function runVcpu(init: VcpuWorkerInit, localPortBus: LocalPortBusFactory): VmEndReason | undefined {
  const channel = new VcpuChannel(init.channel);
  const vcpu = Vcpu.attach(init.id, init.fd, init.run);
  const run = vcpu.runBytes();
  const runView = new DataView(run.buffer, run.byteOffset, run.byteLength);
  const memory = GuestRam.view(init.ram);
  const ctx: ExitContext = {
    vcpu: init.id,
    localPorts: localPortBus((end) => ctx.pendingEnd = end),
    forward: (space, isWrite, address, data) => forward(channel, space, isWrite, address, data),
    fault: (instruction) => faultReport(vcpu, memory, instruction),
  };
  Atomics.store(channel.slots, SLOT.TID, currentThreadId());
  channel.setState(WORKER_STATE.RUNNING);

  for (;;) {
    const request = channel.request;
    if (request === RUN_REQUEST.STOP) return undefined;
    if (request === RUN_REQUEST.PAUSE) {
      waitWhilePaused(channel, vcpu, run);
      continue;
    }
    if (kvmRun(init.fd) < 0) {
      const code = errno();
      if (code === EINTR || code === EAGAIN) continue;
      const message = new SyscallError("ioctl(KVM_RUN)", code).message;
      return { kind: "vcpuError", vcpu: init.id, message };
    }
    Atomics.add(channel.slots, SLOT.EXITS, 1);
    const outcome = handleExit(decodeExit(run, runView), ctx);
    if (outcome.kind === "end") return outcome.reason;
  }
}

function waitWhilePaused(channel: VcpuChannel, vcpu: Vcpu, run: Uint8Array): void {
  // Complete the I/O of the last exit before stopping: KVM_RUN with immediate_exit set
  // finishes pending port/MMIO operations and returns EINTR without running the guest
  // (KVM API, "immediate_exit"), so a paused vCPU's state is consistent (and can be saved).
  run[RUN.IMMEDIATE_EXIT] = 1;
  kvmRun(vcpu.fd);
  channel.setState(WORKER_STATE.PAUSED);
  // While PAUSED this thread touches neither the vCPU fd nor kvm_run: the main thread
  // may save or load the vCPU's state (VcpuThread.save/restore) until it resumes us.
  while (channel.request === RUN_REQUEST.PAUSE) {
    Atomics.wait(channel.slots, SLOT.REQUEST, RUN_REQUEST.PAUSE);
  }
  // KVM_KVMCLOCK_CTRL when the guest is about to run again, not when it stops: it
  // marks the time spent paused as such for the guest (Firecracker PR #5494 moved it
  // there after guests still saw soft lockups).
  vcpu.notifyPaused();
  // Cleared only here: a kick that raced with this resume set it again after the store,
  // and the request check before KVM_RUN sees that kick's request.
  run[RUN.IMMEDIATE_EXIT] = 0;
  channel.setState(WORKER_STATE.RUNNING);
}

function forward(
  channel: VcpuChannel,
  space: Space,
  isWrite: boolean,
  address: number,
  data: Uint8Array,
): void {
  const slots = channel.slots;
  slots[SLOT.SPACE] = space === "pio" ? SPACE.PIO : SPACE.MMIO;
  slots[SLOT.IS_WRITE] = isWrite ? 1 : 0;
  slots[SLOT.SIZE] = data.length;
  channel.address = address;
  if (isWrite) channel.data.set(data);
  Atomics.store(slots, SLOT.MAILBOX, MAILBOX.REQUEST);
  Atomics.notify(slots, SLOT.MAILBOX);
  while (Atomics.load(slots, SLOT.MAILBOX) === MAILBOX.REQUEST) {
    Atomics.wait(slots, SLOT.MAILBOX, MAILBOX.REQUEST);
  }
  if (Atomics.load(slots, SLOT.MAILBOX) === MAILBOX.CLOSED) {
    if (!isWrite) data.fill(0xff);
    return;
  }
  if (!isWrite) data.set(channel.data.subarray(0, data.length));
  Atomics.store(slots, SLOT.MAILBOX, MAILBOX.EMPTY);
  Atomics.notify(slots, SLOT.MAILBOX);
}
