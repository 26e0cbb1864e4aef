/**
 * Why a VM stopped running, and the process exit status `denovisor run` reports for it.
 *
 * @module
 */

import { EXIT_OK, EXIT_STATUS as COMMON_EXIT_STATUS } from "../common/errors.ts";

/** What a vCPU saw when the guest died: enough to debug it from a log line. */
export interface FaultReport {
  vcpu: number;
  rip: bigint;
  cpl: number;
  /** Mode the vCPU was in: "real", "protected", "long". */
  mode: string;
  /** Instruction bytes at RIP, when they could be read. */
  instruction: Uint8Array;
}

/** Why the VM ended. */
export type VmEndReason =
  | { kind: "debugExit"; status: number }
  | { kind: "reset"; source: string }
  | { kind: "poweroff"; source: string }
  | { kind: "tripleFault"; fault: FaultReport }
  | { kind: "emulationFailure"; fault: FaultReport; suberror: number }
  | { kind: "failEntry"; vcpu: number; hardwareReason: bigint }
  | { kind: "vcpuError"; vcpu: number; message: string }
  | { kind: "stopped"; source: string };

/**
 * Exit statuses of `denovisor run`. A test guest's debug-exit status (0-119) passes
 * through unchanged; the VMM's own outcomes use codes above that range.
 */
export const EXIT_STATUS = {
  OK: EXIT_OK,
  /** Bad input, missing files, host problems: nothing ran. */
  ERROR: COMMON_EXIT_STATUS.internal,
  /** Unknown flags or malformed arguments. */
  USAGE: COMMON_EXIT_STATUS.usage,
  /** Debug-exit statuses above this are clamped to it. */
  GUEST_MAX: 119,
  TRIPLE_FAULT: 120,
  EMULATION_FAILURE: 121,
  FAIL_ENTRY: 122,
  VCPU_ERROR: 123,
} as const;

/** The process exit status for a VM that ended for `reason`. */
export function exitStatusFor(reason: VmEndReason): number {
  switch (reason.kind) {
    case "debugExit":
      return Math.min(reason.status, EXIT_STATUS.GUEST_MAX);
    case "reset":
    case "poweroff":
    case "stopped":
      return EXIT_STATUS.OK;
    case "tripleFault":
      return EXIT_STATUS.TRIPLE_FAULT;
    case "emulationFailure":
      return EXIT_STATUS.EMULATION_FAILURE;
    case "failEntry":
      return EXIT_STATUS.FAIL_ENTRY;
    case "vcpuError":
      return EXIT_STATUS.VCPU_ERROR;
  }
}

const hex = (value: bigint | number) => "0x" + value.toString(16);

function describeFault(f: FaultReport): string {
  const bytes = f.instruction.length === 0
    ? "unreadable"
    : Array.from(f.instruction, (b) => b.toString(16).padStart(2, "0")).join(" ");
  return `vCPU ${f.vcpu} at RIP ${
    hex(f.rip)
  } (CPL ${f.cpl}, ${f.mode} mode), instruction bytes: ${bytes}`;
}

/** One line describing the end, for the user. */
export function describeEnd(reason: VmEndReason): string {
  switch (reason.kind) {
    case "debugExit":
      return `guest exited with status ${reason.status}`;
    case "reset":
      return `guest reset (${reason.source})`;
    case "poweroff":
      return `guest powered off (${reason.source})`;
    case "stopped":
      return `VM stopped (${reason.source})`;
    case "tripleFault":
      return `guest triple fault: ${describeFault(reason.fault)}`;
    case "emulationFailure":
      return `KVM could not emulate an instruction (internal error ${reason.suberror}): ` +
        describeFault(reason.fault);
    case "failEntry":
      return `KVM failed to enter vCPU ${reason.vcpu}: hardware reason ${
        hex(reason.hardwareReason)
      }`;
    case "vcpuError":
      return `vCPU ${reason.vcpu} failed: ${reason.message}`;
  }
}
