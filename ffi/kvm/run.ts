/**
 * The layout of the shared `struct kvm_run` page (x86-64), and KVM's exit reasons.
 *
 * @module
 */

/** Byte offsets in struct kvm_run. */
export const RUN = {
  REQUEST_INTERRUPT_WINDOW: 0,
  IMMEDIATE_EXIT: 1,
  EXIT_REASON: 8,
  READY_FOR_INTERRUPT_INJECTION: 12,
  IF_FLAG: 13,
  CR8: 16,
  APIC_BASE: 24,
  /** Start of the exit-specific union. */
  EXIT: 32,
  IO_DIRECTION: 32,
  IO_SIZE: 33,
  IO_PORT: 34,
  IO_COUNT: 36,
  IO_DATA_OFFSET: 40,
  MMIO_PHYS_ADDR: 32,
  MMIO_DATA: 40,
  MMIO_LEN: 48,
  MMIO_IS_WRITE: 52,
  FAIL_ENTRY_REASON: 32,
  FAIL_ENTRY_CPU: 40,
  INTERNAL_SUBERROR: 32,
  INTERNAL_NDATA: 36,
  INTERNAL_DATA: 40,
  EMULATION_FLAGS: 40,
  EMULATION_INSN_SIZE: 48,
  EMULATION_INSN_BYTES: 49,
  SYSTEM_EVENT_TYPE: 32,
  SYSTEM_EVENT_NDATA: 36,
  HW_EXIT_REASON: 32,
  EXCEPTION_NUMBER: 32,
  EXCEPTION_ERROR_CODE: 36,
} as const;

/** KVM_EXIT_* values. */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  MEMORY_FAULT: 39,
} as const;

/** "KVM_EXIT_MEMORY_FAULT (39)" for an exit_reason value; unknown values by number only. */
export function kvmExitName(reason: number): string {
  const name = Object.entries(KVM_EXIT).find(([, value]) => value === reason)?.[0];
  return name === undefined ? `exit_reason ${reason}` : `KVM_EXIT_${name} (${reason})`;
}

/** kvm_run.io.direction */
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

/** kvm_run.internal.suberror values. */
export const KVM_INTERNAL_ERROR = {
  EMULATION: 1,
  SIMUL_EX: 2,
  DELIVERY_EV: 3,
  UNEXPECTED_EXIT_REASON: 4,
} as const;

/** Set in the emulation-failure flags when the instruction bytes are included. */
export const KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1n;

/** kvm_run.system_event.type values. */
export const KVM_SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;
