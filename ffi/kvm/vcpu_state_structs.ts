/**
 * Codecs for the per-vCPU structs a save/restore moves besides the registers: struct
 * kvm_vcpu_events, struct kvm_debugregs, struct kvm_xcrs and struct kvm_msr_list
 * (x86-64 layouts from <asm/kvm.h>; offsets checked against the header by the tests).
 *
 * @module
 */

import { KVM_STRUCT_SIZE } from "./ioctls.ts";

/** kvm_vcpu_events.flags: which optional parts of the struct are valid. */
export const KVM_VCPUEVENT = {
  VALID_NMI_PENDING: 0x1,
  VALID_SIPI_VECTOR: 0x2,
  VALID_SHADOW: 0x4,
  VALID_SMM: 0x8,
  VALID_PAYLOAD: 0x10,
  VALID_TRIPLE_FAULT: 0x20,
} as const;

/** Every flag KVM_SET_VCPU_EVENTS accepts. */
export const KVM_VCPUEVENT_VALID_FLAGS = 0x3f;

/** struct kvm_vcpu_events (the reserved bytes are zero both ways). */
export interface VcpuEvents {
  exception: {
    injected: number;
    nr: number;
    hasErrorCode: number;
    pending: number;
    errorCode: number;
  };
  interrupt: { injected: number; nr: number; soft: number; shadow: number };
  nmi: { injected: number; pending: number; masked: number };
  sipiVector: number;
  flags: number;
  smi: { smm: number; pending: number; smmInsideNmi: number; latchedInit: number };
  tripleFaultPending: number;
  exceptionHasPayload: number;
  exceptionPayload: bigint;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeVcpuEvents(e: VcpuEvents): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.vcpuEvents);
  const view = new DataView(bytes.buffer);
  bytes.set([e.exception.injected, e.exception.nr, e.exception.hasErrorCode, e.exception.pending]);
  view.setUint32(4, e.exception.errorCode, true);
  bytes.set([e.interrupt.injected, e.interrupt.nr, e.interrupt.soft, e.interrupt.shadow], 8);
  bytes.set([e.nmi.injected, e.nmi.pending, e.nmi.masked, 0], 12);
  view.setUint32(16, e.sipiVector, true);
  view.setUint32(20, e.flags, true);
  bytes.set([e.smi.smm, e.smi.pending, e.smi.smmInsideNmi, e.smi.latchedInit], 24);
  bytes[28] = e.tripleFaultPending;
  bytes[55] = e.exceptionHasPayload;
  view.setBigUint64(56, e.exceptionPayload, true);
  return bytes;
}

export function decodeVcpuEvents(bytes: Uint8Array): VcpuEvents {
  const view = viewOf(bytes);
  return {
    exception: {
      injected: bytes[0],
      nr: bytes[1],
      hasErrorCode: bytes[2],
      pending: bytes[3],
      errorCode: view.getUint32(4, true),
    },
    interrupt: { injected: bytes[8], nr: bytes[9], soft: bytes[10], shadow: bytes[11] },
    nmi: { injected: bytes[12], pending: bytes[13], masked: bytes[14] },
    sipiVector: view.getUint32(16, true),
    flags: view.getUint32(20, true),
    smi: { smm: bytes[24], pending: bytes[25], smmInsideNmi: bytes[26], latchedInit: bytes[27] },
    tripleFaultPending: bytes[28],
    exceptionHasPayload: bytes[55],
    exceptionPayload: view.getBigUint64(56, true),
  };
}

/** struct kvm_debugregs (flags and reserved words are zero: KVM refuses anything else). */
export interface DebugRegs {
  /** DR0-DR3. */
  db: bigint[];
  dr6: bigint;
  dr7: bigint;
}

export function encodeDebugRegs(d: DebugRegs): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.debugregs);
  const view = new DataView(bytes.buffer);
  d.db.forEach((value, i) => view.setBigUint64(i * 8, value, true));
  view.setBigUint64(32, d.dr6, true);
  view.setBigUint64(40, d.dr7, true);
  return bytes;
}

export function decodeDebugRegs(bytes: Uint8Array): DebugRegs {
  const view = viewOf(bytes);
  return {
    db: [0, 1, 2, 3].map((i) => view.getBigUint64(i * 8, true)),
    dr6: view.getBigUint64(32, true),
    dr7: view.getBigUint64(40, true),
  };
}

/** One extended control register (XCR0 is the only one KVM has today). */
export interface Xcr {
  xcr: number;
  value: bigint;
}

/** KVM_MAX_XCRS: the room struct kvm_xcrs has. */
export const KVM_MAX_XCRS = 16;
const XCRS_HEADER = 8;
const XCR_SIZE = 16;

export function encodeXcrs(xcrs: Xcr[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.xcrs);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, xcrs.length, true);
  xcrs.forEach((x, i) => {
    view.setUint32(XCRS_HEADER + i * XCR_SIZE, x.xcr, true);
    view.setBigUint64(XCRS_HEADER + i * XCR_SIZE + 8, x.value, true);
  });
  return bytes;
}

export function decodeXcrs(bytes: Uint8Array): Xcr[] {
  const view = viewOf(bytes);
  const count = Math.min(view.getUint32(0, true), KVM_MAX_XCRS);
  return Array.from({ length: count }, (_, i) => ({
    xcr: view.getUint32(XCRS_HEADER + i * XCR_SIZE, true),
    value: view.getBigUint64(XCRS_HEADER + i * XCR_SIZE + 8, true),
  }));
}

/** A struct kvm_msr_list buffer with room for `capacity` indices. */
export function msrListBuffer(capacity: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4 + capacity * 4);
  new DataView(bytes.buffer).setUint32(0, capacity, true);
  return bytes;
}

/** The indices in a struct kvm_msr_list filled by KVM_GET_MSR_INDEX_LIST. */
export function decodeMsrList(bytes: Uint8Array): number[] {
  const view = viewOf(bytes);
  const count = Math.min(view.getUint32(0, true), (bytes.length - 4) / 4);
  return Array.from({ length: count }, (_, i) => view.getUint32(4 + i * 4, true));
}
