/**
 * Codecs for the vCPU register structs: kvm_regs, kvm_segment, kvm_dtable, kvm_sregs
 * and kvm_fpu (x86-64 layouts from <asm/kvm.h>).
 *
 * @module
 */

import { KVM_STRUCT_SIZE } from "./ioctls.ts";

/** General-purpose registers, in kvm_regs order. */
export const GP_REGISTER_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags",
] as const;

/** struct kvm_regs. */
export type Regs = Record<typeof GP_REGISTER_NAMES[number], bigint>;

/** All-zero registers with the reserved RFLAGS bit 1 set. */
export function emptyRegs(): Regs {
  const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, 0n])) as Regs;
  regs.rflags = 2n;
  return regs;
}

export function encodeRegs(regs: Regs): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.regs);
  const view = new DataView(bytes.buffer);
  GP_REGISTER_NAMES.forEach((name, i) => view.setBigUint64(i * 8, regs[name], true));
  return bytes;
}

export function decodeRegs(bytes: Uint8Array): Regs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Object.fromEntries(
    GP_REGISTER_NAMES.map((name, i) => [name, view.getBigUint64(i * 8, true)]),
  ) as Regs;
}

/** struct kvm_segment. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable (GDTR/IDTR). */
export interface DescriptorTable {
  base: bigint;
  limit: number;
}

const SEGMENT_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;

/** struct kvm_sregs. */
export interface Sregs extends Record<typeof SEGMENT_NAMES[number], Segment> {
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupts, 256 bits. */
  interruptBitmap: bigint[];
}

const SEGMENT_SIZE = 24;
const DTABLE_SIZE = 16;
const CONTROL_OFFSET = SEGMENT_NAMES.length * SEGMENT_SIZE + 2 * DTABLE_SIZE;
const CONTROL_NAMES = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"] as const;
const BITMAP_OFFSET = CONTROL_OFFSET + CONTROL_NAMES.length * 8;

function writeSegment(view: DataView, offset: number, s: Segment): void {
  view.setBigUint64(offset, s.base, true);
  view.setUint32(offset + 8, s.limit, true);
  view.setUint16(offset + 12, s.selector, true);
  const flags = [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable];
  flags.forEach((value, i) => view.setUint8(offset + 14 + i, value));
}

function readSegment(view: DataView, offset: number): Segment {
  const u8 = (i: number) => view.getUint8(offset + 14 + i);
  return {
    base: view.getBigUint64(offset, true),
    limit: view.getUint32(offset + 8, true),
    selector: view.getUint16(offset + 12, true),
    type: u8(0),
    present: u8(1),
    dpl: u8(2),
    db: u8(3),
    s: u8(4),
    l: u8(5),
    g: u8(6),
    avl: u8(7),
    unusable: u8(8),
  };
}

export function encodeSregs(sregs: Sregs): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.sregs);
  const view = new DataView(bytes.buffer);
  SEGMENT_NAMES.forEach((name, i) => writeSegment(view, i * SEGMENT_SIZE, sregs[name]));
  [sregs.gdt, sregs.idt].forEach((table, i) => {
    const offset = SEGMENT_NAMES.length * SEGMENT_SIZE + i * DTABLE_SIZE;
    view.setBigUint64(offset, table.base, true);
    view.setUint16(offset + 8, table.limit, true);
  });
  CONTROL_NAMES.forEach((name, i) => view.setBigUint64(CONTROL_OFFSET + i * 8, sregs[name], true));
  sregs.interruptBitmap.forEach((word, i) => view.setBigUint64(BITMAP_OFFSET + i * 8, word, true));
  return bytes;
}

export function decodeSregs(bytes: Uint8Array): Sregs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = (i: number): DescriptorTable => {
    const offset = SEGMENT_NAMES.length * SEGMENT_SIZE + i * DTABLE_SIZE;
    return { base: view.getBigUint64(offset, true), limit: view.getUint16(offset + 8, true) };
  };
  const control = (i: number) => view.getBigUint64(CONTROL_OFFSET + i * 8, true);
  return {
    ...Object.fromEntries(
      SEGMENT_NAMES.map((name, i) => [name, readSegment(view, i * SEGMENT_SIZE)]),
    ) as Record<typeof SEGMENT_NAMES[number], Segment>,
    gdt: table(0),
    idt: table(1),
    cr0: control(0),
    cr2: control(1),
    cr3: control(2),
    cr4: control(3),
    cr8: control(4),
    efer: control(5),
    apicBase: control(6),
    interruptBitmap: [0, 1, 2, 3].map((i) => view.getBigUint64(BITMAP_OFFSET + i * 8, true)),
  };
}

/** struct kvm_fpu, kept as raw bytes plus the two fields the VMM sets at boot. */
export interface Fpu {
  /** x87 control word (0x37f after FNINIT). */
  fcw: number;
  /** SSE control/status (0x1f80 at reset). */
  mxcsr: number;
  /** The whole struct, for save/restore. */
  raw: Uint8Array;
}

const FPU_FCW_OFFSET = 128;
// After fpr[8][16], fcw, fsw, ftwx, pad, last_opcode, last_ip, last_dp and xmm[16][16].
const FPU_MXCSR_OFFSET = 408;

export function encodeFpu(fpu: Fpu): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.fpu);
  bytes.set(fpu.raw.subarray(0, bytes.length));
  const view = new DataView(bytes.buffer);
  view.setUint16(FPU_FCW_OFFSET, fpu.fcw, true);
  view.setUint32(FPU_MXCSR_OFFSET, fpu.mxcsr, true);
  return bytes;
}

export function decodeFpu(bytes: Uint8Array): Fpu {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    fcw: view.getUint16(FPU_FCW_OFFSET, true),
    mxcsr: view.getUint32(FPU_MXCSR_OFFSET, true),
    raw: bytes.slice(0, KVM_STRUCT_SIZE.fpu),
  };
}

/** The FPU state after reset: FCW 0x37f, MXCSR 0x1f80. */
export function resetFpu(): Fpu {
  return { fcw: 0x37f, mxcsr: 0x1f80, raw: new Uint8Array(KVM_STRUCT_SIZE.fpu) };
}
