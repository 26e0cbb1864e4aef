/**
 * What a vCPU thread does with each exit. A pure function of the exit and a small
 * context, so tests drive it without KVM: port I/O for devices that live on the vCPU's
 * own thread is served in place, everything else is forwarded to the main thread's
 * buses, and fatal exits end the VM with a report.
 *
 * @module
 */

import type { VcpuExit } from "./vcpu_exit.ts";
import type { FaultReport, VmEndReason } from "./vm_end.ts";
import type { Bus } from "./bus.ts";
import { KVM_SYSTEM_EVENT } from "../ffi/kvm/run.ts";

/** Address spaces an access can be forwarded for. */
export type Space = "pio" | "mmio";

/** What the exit handler needs from its vCPU thread. */
export interface ExitContext {
  readonly vcpu: number;
  /** Port-I/O devices served on the vCPU thread itself (hot, thread-safe ones). */
  readonly localPorts: Bus;
  /** Hands an access to the main thread's buses and waits for it to be served. */
  forward(space: Space, isWrite: boolean, address: number, data: Uint8Array): void;
  /** Registers, mode and instruction bytes at the moment of a fatal exit. */
  fault(instruction?: Uint8Array): FaultReport;
  /** Set by local devices that end the VM (the debug-exit port). */
  pendingEnd?: VmEndReason;
}

/** After an exit: enter the guest again, or stop this vCPU (and the VM) for `reason`. */
export type ExitOutcome = { kind: "resume" } | { kind: "end"; reason: VmEndReason };

const RESUME: ExitOutcome = { kind: "resume" };

/** Handles one exit on the vCPU's thread. */
export function handleExit(exit: VcpuExit, ctx: ExitContext): ExitOutcome {
  switch (exit.kind) {
    case "io": {
      const isWrite = exit.direction === "out";
      // String I/O (rep ins/outs) arrives as `count` consecutive elements; the common
      // single access uses the data view as it is (this runs once per exit).
      for (let i = 0; i < exit.count; i++) {
        const element = exit.count === 1
          ? exit.data
          : exit.data.subarray(i * exit.size, (i + 1) * exit.size);
        const served = isWrite
          ? ctx.localPorts.write(exit.port, element)
          : ctx.localPorts.read(exit.port, element);
        if (!served) ctx.forward("pio", isWrite, exit.port, element);
      }
      return ctx.pendingEnd ? { kind: "end", reason: ctx.pendingEnd } : RESUME;
    }
    case "mmio":
      ctx.forward("mmio", exit.isWrite, exit.address, exit.data);
      return RESUME;
    case "hlt":
    case "intr":
    case "irqWindowOpen":
      return RESUME;
    case "shutdown":
      return { kind: "end", reason: { kind: "tripleFault", fault: ctx.fault() } };
    case "internalError":
      return {
        kind: "end",
        reason: {
          kind: "emulationFailure",
          suberror: exit.suberror,
          fault: ctx.fault(exit.instruction),
        },
      };
    case "failEntry":
      return {
        kind: "end",
        reason: { kind: "failEntry", vcpu: ctx.vcpu, hardwareReason: exit.hardwareReason },
      };
    case "systemEvent":
      return { kind: "end", reason: systemEventEnd(exit.type) };
    case "unknown":
      return {
        kind: "end",
        reason: {
          kind: "vcpuError",
          vcpu: ctx.vcpu,
          message: `unexpected KVM exit reason ${exit.reason} ` +
            `(hardware reason 0x${exit.hardwareReason.toString(16)})`,
        },
      };
  }
}

function systemEventEnd(type: number): VmEndReason {
  switch (type) {
    case KVM_SYSTEM_EVENT.RESET:
      return { kind: "reset", source: "system event" };
    case KVM_SYSTEM_EVENT.SHUTDOWN:
      return { kind: "poweroff", source: "system event" };
    default:
      return { kind: "poweroff", source: `system event ${type}` };
  }
}
