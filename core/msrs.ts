/**
 * Model-specific registers: those set on every vCPU before boot, as a BIOS would leave
 * them, and which of them a saved vCPU carries and in what order they are restored.
 *
 * @module
 */

import type { MsrEntry } from "../ffi/kvm/cpuid.ts";

export const MSR = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
} as const;

/** IA32_MISC_ENABLE bit 0: fast string operations, which firmware enables. */
const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRdefType: MTRRs enabled (bit 11), default memory type write-back (6). */
const MTRR_ENABLED_WRITE_BACK = (1n << 11n) | 6n;

/** The MSR values every vCPU starts with. */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLED_WRITE_BACK },
  ];
}

/** kvmclock's wall-clock MSRs, old and new interface. */
const KVM_WALL_CLOCK_MSRS: readonly number[] = [0x11, 0x4b56_4d00];
/** Async PF's interrupt vector: KVM checks it when the guest's enable MSR is written. */
const MSR_KVM_ASYNC_PF_INT = 0x4b56_4d06;
/** IA32_TSC_DEADLINE: the local APIC timer's deadline in TSC-deadline mode. */
export const MSR_IA32_TSC_DEADLINE = 0x6e0;

/**
 * The MSRs a saved vCPU carries when KVM lists them (KVM_GET_MSR_INDEX_LIST): the
 * Firecracker allowlist for what a guest kernel keeps in MSRs. APIC_BASE is not here
 * (sregs carries it and SET_SREGS restores it), nor are EFER, FS_BASE and GS_BASE when
 * KVM does not list them (sregs carries those too).
 */
const PERSISTED_MSR_RANGES: ReadonlyArray<readonly [number, number]> = [
  [MSR.IA32_TSC, MSR.IA32_TSC],
  [0x3b, 0x3b], // IA32_TSC_ADJUST
  [0x48, 0x48], // IA32_SPEC_CTRL
  [0x11, 0x12], // kvmclock, old interface: wall clock, system time
  [MSR.IA32_SYSENTER_CS, MSR.IA32_SYSENTER_EIP],
  [MSR.IA32_MISC_ENABLE, MSR.IA32_MISC_ENABLE],
  [0x200, 0x2ff], // MTRRs and PAT (0x277)
  [MSR_IA32_TSC_DEADLINE, MSR_IA32_TSC_DEADLINE],
  [0xda0, 0xda0], // IA32_XSS: without it XRSTORS faults after a restore
  [0xc000_0080, 0xc000_0084], // EFER, STAR, LSTAR, CSTAR, SFMASK
  [0xc000_0100, 0xc000_0103], // FS_BASE, GS_BASE, KERNEL_GS_BASE, TSC_AUX
  // KVM paravirtual: kvmclock, async PF (enable, interrupt, ack), steal time, PV EOI,
  // poll control. Not the rest of 0x4b564dxx: the PVM backend of this project's hosts
  // keeps its own MSRs from 0x4b564df0, which only PVM-aware guests use (ours are not).
  [0x4b56_4d00, 0x4b56_4d07],
];

/**
 * MTRRs KVM emulates but does not list in KVM_GET_MSR_INDEX_LIST: the default type, the
 * 8 variable pairs and the 11 fixed ranges (MTRRcap is read-only and not moved).
 */
export const MTRR_MSRS: readonly number[] = [
  ...Array.from({ length: 16 }, (_, i) => 0x200 + i),
  0x250,
  0x258,
  0x259,
  ...Array.from({ length: 8 }, (_, i) => 0x268 + i),
  MSR.MTRR_DEF_TYPE,
];

/** Whether a saved state may carry MSR `index` (anything else in a state is refused). */
export function isPersistedMsr(index: number): boolean {
  return PERSISTED_MSR_RANGES.some(([first, last]) => index >= first && index <= last);
}

/** The MSRs to save, from KVM's index list: the allowlisted ones plus the MTRRs, sorted. */
export function persistedMsrIndices(kvmIndexList: readonly number[]): number[] {
  const indices = new Set(kvmIndexList.filter(isPersistedMsr));
  MTRR_MSRS.forEach((index) => indices.add(index));
  return [...indices].sort((a, b) => a - b);
}

/** The offset of the local APIC's LVT timer register in a kvm_lapic_state. */
export const LAPIC_LVT_TIMER_OFFSET = 0x320;
/** The LVT timer's mode field (bits 17-18) in TSC-deadline mode. */
const APIC_LVT_TIMER_TSC_DEADLINE = 2;

/**
 * A zero TSC deadline in TSC-deadline mode can mean the timer fired while the vCPU was
 * being stopped and its interrupt is not in the saved APIC yet; saving the current TSC
 * instead re-arms it at once on restore, so the guest's timer is not lost forever
 * (Firecracker #4099, PR #4618). In any other timer mode KVM ignores the MSR.
 */
export function rearmedTscDeadline(msrs: MsrEntry[], lapicLvtTimer: number): MsrEntry[] {
  const deadlineMode = ((lapicLvtTimer >>> 17) & 3) === APIC_LVT_TIMER_TSC_DEADLINE;
  const tsc = msrs.find((m) => m.index === MSR.IA32_TSC);
  if (!deadlineMode || tsc === undefined) return msrs;
  return msrs.map((m) =>
    m.index === MSR_IA32_TSC_DEADLINE && m.data === 0n ? { index: m.index, data: tsc.data } : m
  );
}

/**
 * Saved MSRs in the order KVM_SET_MSRS must see them, as two calls: IA32_TSC first,
 * async PF's interrupt vector before its enable (KVM checks the vector when enabling),
 * and IA32_TSC_DEADLINE alone in a second call after everything else, because KVM arms
 * the deadline timer against the guest TSC set just before (Firecracker PR #4666). A
 * zero wall-clock MSR is left out (see below).
 */
export function msrRestoreBatches(msrs: readonly MsrEntry[]): MsrEntry[][] {
  const rank = (index: number) =>
    index === MSR.IA32_TSC ? 0 : index === MSR_KVM_ASYNC_PF_INT ? 1 : 2;
  const first = msrs
    .filter((m) => m.index !== MSR_IA32_TSC_DEADLINE)
    // Writing a kvmclock wall-clock MSR makes KVM write the wall clock into guest memory
    // at that address; 0 (the guest never asked) would scribble over guest page 0, and a
    // fresh vCPU holds 0 already.
    .filter((m) => !(KVM_WALL_CLOCK_MSRS.includes(m.index) && m.data === 0n))
    .map((m, position) => ({ m, position }))
    .sort((a, b) => rank(a.m.index) - rank(b.m.index) || a.position - b.position)
    .map(({ m }) => m);
  const deadline = msrs.filter((m) => m.index === MSR_IA32_TSC_DEADLINE);
  return deadline.length > 0 ? [first, deadline] : [first];
}

/**
 * KVM's paravirtual MSRs (kvmclock old and new, async PF, steal time, PV EOI...) that
 * a saved vCPU carries. A
 * fresh vCPU holds 0 in each, so a saved 0 that KVM refuses to write (steal time on a
 * host without schedstats refuses even 0) can be skipped without losing anything.
 */
export function isKvmParavirtualMsr(index: number): boolean {
  return index === 0x11 || index === 0x12 || (index >= 0x4b56_4d00 && index <= 0x4b56_4d07);
}
