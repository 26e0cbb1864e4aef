/**
 * The boot GDT and the segment registers a vCPU starts with, shaped like KVM's
 * `struct kvm_segment` so the VMM copies them straight into KVM_SET_SREGS.
 *
 * The GDT must end at BOOT_IDT_START (0x520), which leaves room for four descriptors:
 *
 * | selector | descriptor                              | used by                     |
 * | -------- | --------------------------------------- | --------------------------- |
 * | 0x00     | null                                    |                             |
 * | 0x08     | 32-bit flat code (execute/read)         | PVH entry (CS)              |
 * | 0x10     | 64-bit code (`__BOOT_CS`)               | Linux 64-bit entry (CS)     |
 * | 0x18     | flat data, 4 GiB (`__BOOT_DS`)          | both (DS, ES, FS, GS, SS)   |
 *
 * TR uses selector 0x20 with a busy 32-bit TSS at base 0, limit 0x67 (what PVH asks for and
 * what VMX entry checks). KVM takes TR's hidden part from KVM_SET_SREGS and never reads the
 * descriptor, and the kernels load their own GDT and TSS before any `ltr`, so the descriptor
 * is not written (it would overlap the IDT).
 *
 * @module
 */

import type { DescriptorTable, Segment } from "../../ffi/kvm/regs.ts";
import type { GuestMemory } from "../guest_memory.ts";
import { BOOT_GDT_START, BOOT_IDT_START } from "../layout.ts";

/** Selectors of the boot GDT. */
export const PVH_CODE32_SELECTOR = 0x08;
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const BOOT_TSS_SELECTOR = 0x20;

/** A segment register as KVM's `struct kvm_segment` holds it (flags are 0 or 1). */
export type KvmSegment = Segment;

/** The segment registers for one boot mode. */
export interface BootSegments {
  cs: KvmSegment;
  ds: KvmSegment;
  es: KvmSegment;
  fs: KvmSegment;
  gs: KvmSegment;
  ss: KvmSegment;
  tr: KvmSegment;
  ldt: KvmSegment;
  /** GDTR and IDTR (`struct kvm_dtable`: base and limit). */
  gdt: DescriptorTable;
  idt: DescriptorTable;
}

/** The two ways Denovisor enters a kernel. */
export type BootMode = "pvh32" | "long64";

const FLAT = { base: 0n, limit: 0xffff_ffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0 } as const;

/** 32-bit flat code for PVH: execute/read, accessed. */
const CODE32: KvmSegment = {
  ...FLAT,
  selector: PVH_CODE32_SELECTOR,
  type: 0xb,
  db: 1,
  l: 0,
  unusable: 0,
};
/** 64-bit code: L set, D/B clear as long mode requires. */
const CODE64: KvmSegment = { ...FLAT, selector: BOOT_CS, type: 0xb, db: 0, l: 1, unusable: 0 };
/** Flat read/write data, accessed; D/B set so it also serves as a 32-bit stack segment. */
const DATA: KvmSegment = { ...FLAT, selector: BOOT_DS, type: 0x3, db: 1, l: 0, unusable: 0 };
/** Busy 32-bit TSS (type 11), as PVH requires and VMX entry accepts in both modes. */
const TSS: KvmSegment = {
  base: 0n,
  limit: 0x67,
  selector: BOOT_TSS_SELECTOR,
  type: 0xb,
  present: 1,
  dpl: 0,
  db: 0,
  s: 0,
  l: 0,
  g: 0,
  avl: 0,
  unusable: 0,
};
/** No LDT. */
const LDT: KvmSegment = {
  base: 0n,
  limit: 0,
  selector: 0,
  type: 0x2,
  present: 0,
  dpl: 0,
  db: 0,
  s: 0,
  l: 0,
  g: 0,
  avl: 0,
  unusable: 1,
};

/** The descriptors written to the GDT, indexed by selector / 8. */
export const BOOT_GDT_ENTRIES: readonly (KvmSegment | null)[] = [null, CODE32, CODE64, DATA];
/** GDTR limit: size of the table minus one. */
export const BOOT_GDT_LIMIT = BOOT_GDT_ENTRIES.length * 8 - 1;

/** Encodes a code or data segment as an 8-byte GDT descriptor. */
export function encodeDescriptor(segment: KvmSegment): bigint {
  const limit = BigInt(segment.g ? segment.limit >>> 12 : segment.limit);
  const base = BigInt(segment.base);
  const access = BigInt(
    segment.type | (segment.s << 4) | (segment.dpl << 5) | (segment.present << 7),
  );
  const flags = BigInt(segment.avl | (segment.l << 1) | (segment.db << 2) | (segment.g << 3));
  return (limit & 0xffffn) | ((base & 0xff_ffffn) << 16n) | (access << 40n) |
    (((limit >> 16n) & 0xfn) << 48n) | (flags << 52n) | (((base >> 24n) & 0xffn) << 56n);
}

/** Writes the boot GDT at BOOT_GDT_START and a zeroed 8-byte IDT at BOOT_IDT_START. */
export function writeBootGdt(mem: GuestMemory): void {
  if (BOOT_GDT_START + BOOT_GDT_LIMIT + 1 > BOOT_IDT_START) {
    throw new RangeError("The boot GDT overlaps the boot IDT; move BOOT_IDT_START");
  }
  BOOT_GDT_ENTRIES.forEach((segment, i) => {
    mem.writeU64(BOOT_GDT_START + i * 8, segment ? encodeDescriptor(segment) : 0n);
  });
  mem.writeU64(BOOT_IDT_START, 0n);
}

/**
 * The segment registers for `mode` (fresh objects: the caller may change them):
 * "pvh32" is protected mode with paging off, CS = 0x08; "long64" is the Linux 64-bit boot
 * protocol, CS = __BOOT_CS (0x10). Both use flat data 0x18 and an IDT of limit 0 (interrupts
 * stay off until the kernel installs its own).
 */
export function bootSegments(mode: BootMode): BootSegments {
  const data = () => ({ ...DATA });
  return {
    cs: { ...(mode === "pvh32" ? CODE32 : CODE64) },
    ds: data(),
    es: data(),
    fs: data(),
    gs: data(),
    ss: data(),
    tr: { ...TSS },
    ldt: { ...LDT },
    gdt: { base: BigInt(BOOT_GDT_START), limit: BOOT_GDT_LIMIT },
    idt: { base: BigInt(BOOT_IDT_START), limit: 0 },
  };
}

/** CR0 protection enable, paging; CR4 PAE; EFER long mode enable/active. */
export const X86_CR0_PE = 1 << 0;
export const X86_CR0_ET = 1 << 4;
export const X86_CR0_PG = 0x8000_0000;
export const X86_CR4_PAE = 1 << 5;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;

/** Control registers for `mode` (CR0 built with `+`: bit 31 would make `|` negative), besides CR3 (PVH: paging off, so CR3 is unused). */
export function bootControlRegisters(mode: BootMode): { cr0: number; cr4: number; efer: number } {
  return mode === "pvh32"
    ? { cr0: X86_CR0_PE | X86_CR0_ET, cr4: 0, efer: 0 }
    : { cr0: (X86_CR0_PE | X86_CR0_ET) + X86_CR0_PG, cr4: X86_CR4_PAE, efer: EFER_LME | EFER_LMA };
}
