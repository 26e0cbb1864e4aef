/**
 * Codecs for per-vCPU state kept mostly as raw bytes (saved and restored whole): the
 * local APIC page, mp_state and vcpu_events, with accessors for the fields the VMM edits.
 *
 * @module
 */

/** kvm_mp_state values. */
export const KVM_MP_STATE = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
} as const;

/** Offsets of local APIC registers in struct kvm_lapic_state.regs. */
export const APIC_REG = {
  ID: 0x20,
  SPIV: 0xf0,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
} as const;

/** Local APIC delivery modes (LVT bits 8-10). */
export const APIC_DELIVERY_MODE = { FIXED: 0, NMI: 4, EXTINT: 7 } as const;

/** Reads a 32-bit local APIC register from a kvm_lapic_state buffer. */
export function lapicRegister(lapic: Uint8Array, offset: number): number {
  return new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength).getUint32(offset, true);
}

/** Writes a 32-bit local APIC register in a kvm_lapic_state buffer. */
export function setLapicRegister(lapic: Uint8Array, offset: number, value: number): void {
  new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength).setUint32(
    offset,
    value >>> 0,
    true,
  );
}

/** An LVT entry value with `mode` as delivery mode, keeping the other bits of `lvt`. */
export function withDeliveryMode(lvt: number, mode: number): number {
  return ((lvt & ~0x700) | (mode << 8)) >>> 0;
}
