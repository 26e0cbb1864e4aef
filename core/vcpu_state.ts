/**
 * The per-vCPU KVM state a save/restore moves: CPUID, registers, segment and control
 * registers, FPU/XSAVE and XCRs, the local APIC page, MSRs (TSC, SYSENTER, syscall,
 * kvmclock, PAT, MTRRs... see core/msrs.ts), pending events, debug registers and the MP
 * state. `VcpuState` is plain JSON (u64 values as strings, KVM structs with no fields a
 * VMM reads as base64); `parseVcpuState` checks an untrusted one and is a pure function,
 * so the validation is tested without KVM. `Vcpu.save()`/`restore()` do the ioctls.
 *
 * @module
 */

import { encodeBase64, formatU64, parseU64, StateError, StateReader } from "../common/persist.ts";
import { CPUID_MAX_ENTRIES, type CpuidEntry, type MsrEntry } from "../ffi/kvm/cpuid.ts";
import { KVM_STRUCT_SIZE } from "../ffi/kvm/ioctls.ts";
import { GP_REGISTER_NAMES, type Regs, type Segment, type Sregs } from "../ffi/kvm/regs.ts";
import {
  type DebugRegs,
  KVM_VCPUEVENT_VALID_FLAGS,
  type VcpuEvents,
  type Xcr,
} from "../ffi/kvm/vcpu_state_structs.ts";
import { KVM_MP_STATE } from "../ffi/kvm/vcpu_structs.ts";
import { isPersistedMsr } from "./msrs.ts";

/** Layout versions of `VcpuState` this build reads. */
export const VCPU_STATE_VERSIONS = [1] as const;

/** What the host's KVM can save and load, found once per host (core/vcpu_state_support.ts). */
export interface VcpuStateSupport {
  /** The MSRs to save (core/msrs.ts `persistedMsrIndices`). */
  readonly msrIndices: readonly number[];
  /** Bytes of the XSAVE area (KVM_CAP_XSAVE2), or 0 without KVM_CAP_XSAVE. */
  readonly xsaveSize: number;
  /** KVM_CAP_XCRS. */
  readonly xcrs: boolean;
  /** KVM_CAP_DEBUGREGS. */
  readonly debugregs: boolean;
}

/** The most XSAVE bytes a state may carry (AMX needs about 11 KiB). */
export const MAX_XSAVE_SIZE = 64 * 1024;
/** The most MSRs a state may carry: the allowlisted ranges hold fewer than this. */
export const MAX_SAVED_MSRS = 512;

type SegmentName = "cs" | "ds" | "es" | "fs" | "gs" | "ss" | "tr" | "ldt";
const SEGMENT_NAMES: readonly SegmentName[] = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"];
const CONTROL_NAMES = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"] as const;
/** Segment flag fields and their largest values (dpl is two bits, type four). */
const SEGMENT_FLAGS = {
  type: 15,
  present: 1,
  dpl: 3,
  db: 1,
  s: 1,
  l: 1,
  g: 1,
  avl: 1,
  unusable: 1,
} as const;

/** struct kvm_segment as JSON. */
export type SegmentJson = Omit<Segment, "base"> & { base: string };

/** struct kvm_sregs as JSON. */
export type SregsJson =
  & Record<SegmentName, SegmentJson>
  & Record<typeof CONTROL_NAMES[number], string>
  & {
    gdt: { base: string; limit: number };
    idt: { base: string; limit: number };
    interruptBitmap: string[];
  };

/** struct kvm_vcpu_events as JSON (the payload is a u64). */
export type VcpuEventsJson = Omit<VcpuEvents, "exceptionPayload"> & { exceptionPayload: string };

/** The state of one vCPU. */
export interface VcpuState {
  version: 1;
  /** The vCPU (APIC) id: a state restores only the vCPU with the same id. */
  id: number;
  cpuid: CpuidEntry[];
  regs: Record<typeof GP_REGISTER_NAMES[number], string>;
  sregs: SregsJson;
  /** struct kvm_fpu, base64. */
  fpu: string;
  /** The XSAVE area, base64; null where KVM has no XSAVE (the FPU then carries all). */
  xsave: string | null;
  xcrs: Array<{ xcr: number; value: string }> | null;
  /** struct kvm_lapic_state (the APIC register page), base64. */
  lapic: string;
  msrs: Array<{ index: number; value: string }>;
  events: VcpuEventsJson;
  debugregs: { db: string[]; dr6: string; dr7: string } | null;
  /** KVM_MP_STATE_*: runnable, uninitialized (an AP before INIT/SIPI), halted... */
  mpState: number;
  /** The guest TSC's frequency in kHz (KVM_GET_TSC_KHZ; 0 when KVM did not know it). */
  tscKhz: number;
}

/** The decoded KVM structs of a `VcpuState` (what `Vcpu` reads and writes). */
export interface VcpuStateParts {
  id: number;
  cpuid: CpuidEntry[];
  regs: Regs;
  sregs: Sregs;
  fpu: Uint8Array;
  xsave: Uint8Array | null;
  xcrs: Xcr[] | null;
  lapic: Uint8Array;
  msrs: MsrEntry[];
  events: VcpuEvents;
  debugregs: DebugRegs | null;
  mpState: number;
  tscKhz: number;
}

/** Builds the JSON state from what KVM returned. */
export function vcpuStateFrom(p: VcpuStateParts): VcpuState {
  const segment = (s: Segment): SegmentJson => ({ ...s, base: formatU64(s.base) });
  const table = (t: { base: bigint; limit: number }) => ({
    base: formatU64(t.base),
    limit: t.limit,
  });
  return {
    version: 1,
    id: p.id,
    cpuid: p.cpuid.map((e) => ({ ...e })),
    regs: Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, formatU64(p.regs[n])])) as Record<
      typeof GP_REGISTER_NAMES[number],
      string
    >,
    sregs: {
      ...Object.fromEntries(SEGMENT_NAMES.map((n) => [n, segment(p.sregs[n])])) as Record<
        SegmentName,
        SegmentJson
      >,
      ...Object.fromEntries(CONTROL_NAMES.map((n) => [n, formatU64(p.sregs[n])])) as Record<
        typeof CONTROL_NAMES[number],
        string
      >,
      gdt: table(p.sregs.gdt),
      idt: table(p.sregs.idt),
      interruptBitmap: p.sregs.interruptBitmap.map(formatU64),
    },
    fpu: encodeBase64(p.fpu),
    xsave: p.xsave === null ? null : encodeBase64(p.xsave),
    xcrs: p.xcrs === null ? null : p.xcrs.map((x) => ({ xcr: x.xcr, value: formatU64(x.value) })),
    lapic: encodeBase64(p.lapic),
    msrs: p.msrs.map((m) => ({ index: m.index, value: formatU64(m.data) })),
    events: {
      ...p.events,
      exception: { ...p.events.exception },
      interrupt: { ...p.events.interrupt },
      nmi: { ...p.events.nmi },
      smi: { ...p.events.smi },
      exceptionPayload: formatU64(p.events.exceptionPayload),
    },
    debugregs: p.debugregs === null ? null : {
      db: p.debugregs.db.map(formatU64),
      dr6: formatU64(p.debugregs.dr6),
      dr7: formatU64(p.debugregs.dr7),
    },
    mpState: p.mpState,
    tscKhz: p.tscKhz,
  };
}

/**
 * Checks an untrusted vCPU state against the vCPU it is for (`id`) and what this host's
 * KVM can load (`support`), and decodes it; throws `StateError` naming the first bad
 * field. Nothing KVM would refuse with a bare errno passes silently: sizes, counts,
 * enumerations and reserved bits are checked here.
 */
export function parseVcpuState(
  value: unknown,
  id: number,
  support: VcpuStateSupport,
  path = "state",
): VcpuStateParts {
  const state = new StateReader(value, path);
  state.version(VCPU_STATE_VERSIONS);
  const savedId = state.integer("id", 0, 0xffff_ffff);
  if (savedId !== id) {
    throw new StateError(
      state.fieldPath("id"),
      `the state of vCPU ${savedId} cannot restore vCPU ${id}`,
    );
  }
  const u64s = (reader: StateReader, names: readonly string[]) =>
    Object.fromEntries(names.map((n) => [n, reader.u64(n)]));
  const cpuid = state.array("cpuid", CPUID_MAX_ENTRIES, parseCpuidEntry);
  if (cpuid.length === 0) {
    throw new StateError(state.fieldPath("cpuid"), "expected the vCPU's CPUID leaves, got none");
  }
  return {
    id,
    cpuid,
    regs: u64s(state.object("regs"), GP_REGISTER_NAMES) as Regs,
    sregs: parseSregs(state.object("sregs")),
    fpu: state.bytes("fpu", { exact: KVM_STRUCT_SIZE.fpu }),
    xsave: parseXsave(state, support),
    xcrs: parseXcrs(state, support),
    lapic: state.bytes("lapic", { exact: KVM_STRUCT_SIZE.lapic }),
    msrs: parseMsrs(state),
    events: parseEvents(state.object("events")),
    debugregs: parseDebugRegs(state, support),
    mpState: state.integer("mpState", KVM_MP_STATE.RUNNABLE, KVM_MP_STATE.SIPI_RECEIVED),
    tscKhz: state.integer("tscKhz", 0, 0x7fff_ffff),
  };
}

function parseCpuidEntry(value: unknown, path: string): CpuidEntry {
  const entry = new StateReader(value, path);
  const u32 = (name: string) => entry.integer(name, 0, 0xffff_ffff);
  return {
    function: u32("function"),
    index: u32("index"),
    // KVM_CPUID_FLAG_SIGNIFCANT_INDEX | STATEFUL_FUNC | STATE_READ_NEXT.
    flags: entry.integer("flags", 0, 7),
    eax: u32("eax"),
    ebx: u32("ebx"),
    ecx: u32("ecx"),
    edx: u32("edx"),
  };
}

function parseSregs(sregs: StateReader): Sregs {
  const segment = (name: SegmentName): Segment => {
    const s = sregs.object(name);
    return {
      base: s.u64("base"),
      limit: s.integer("limit", 0, 0xffff_ffff),
      selector: s.integer("selector", 0, 0xffff),
      ...Object.fromEntries(
        Object.entries(SEGMENT_FLAGS).map(([flag, max]) => [flag, s.integer(flag, 0, max)]),
      ) as Record<keyof typeof SEGMENT_FLAGS, number>,
    };
  };
  const table = (name: "gdt" | "idt") => {
    const t = sregs.object(name);
    return { base: t.u64("base"), limit: t.integer("limit", 0, 0xffff) };
  };
  const bitmap = sregs.array("interruptBitmap", 4, parseU64);
  if (bitmap.length !== 4) {
    throw new StateError(
      sregs.fieldPath("interruptBitmap"),
      `expected 4 words, got ${bitmap.length}`,
    );
  }
  return {
    ...Object.fromEntries(SEGMENT_NAMES.map((n) => [n, segment(n)])) as Record<
      SegmentName,
      Segment
    >,
    ...Object.fromEntries(CONTROL_NAMES.map((n) => [n, sregs.u64(n)])) as Record<
      typeof CONTROL_NAMES[number],
      bigint
    >,
    gdt: table("gdt"),
    idt: table("idt"),
    interruptBitmap: bitmap,
  };
}

function parseXsave(state: StateReader, support: VcpuStateSupport): Uint8Array | null {
  if (state.raw("xsave") === null) return null;
  if (support.xsaveSize === 0) {
    throw new StateError(
      state.fieldPath("xsave"),
      "this host's KVM cannot load an XSAVE area (no KVM_CAP_XSAVE); restore on a host with XSAVE",
    );
  }
  const xsave = state.bytes("xsave", { max: MAX_XSAVE_SIZE });
  if (xsave.length < KVM_STRUCT_SIZE.xsave || xsave.length > support.xsaveSize) {
    throw new StateError(
      state.fieldPath("xsave"),
      `expected ${KVM_STRUCT_SIZE.xsave} to ${support.xsaveSize} bytes (this host's XSAVE size), got ${xsave.length}`,
    );
  }
  // KVM_SET_XSAVE reads exactly the host's size: a smaller area from a host with fewer
  // XSAVE components is zero-extended (those components stay in their initial state).
  const area = new Uint8Array(support.xsaveSize);
  area.set(xsave);
  return area;
}

function parseXcrs(state: StateReader, support: VcpuStateSupport): Xcr[] | null {
  if (state.raw("xcrs") === null) return null;
  if (!support.xcrs) {
    throw new StateError(
      state.fieldPath("xcrs"),
      "this host's KVM cannot load XCRs (no KVM_CAP_XCRS)",
    );
  }
  // XCR0 is the only extended control register; KVM refuses any other index.
  return state.array("xcrs", 1, (value, path) => {
    const xcr = new StateReader(value, path);
    return { xcr: xcr.integer("xcr", 0, 0), value: xcr.u64("value") };
  });
}

function parseMsrs(state: StateReader): MsrEntry[] {
  const seen = new Set<number>();
  return state.array("msrs", MAX_SAVED_MSRS, (value, path) => {
    const msr = new StateReader(value, path);
    const index = msr.integer("index", 0, 0xffff_ffff);
    if (!isPersistedMsr(index)) {
      throw new StateError(
        msr.fieldPath("index"),
        `MSR 0x${index.toString(16)} is not one a saved vCPU carries`,
      );
    }
    if (seen.has(index)) {
      throw new StateError(msr.fieldPath("index"), `MSR 0x${index.toString(16)} appears twice`);
    }
    seen.add(index);
    return { index, data: msr.u64("value") };
  });
}

function parseEvents(events: StateReader): VcpuEvents {
  const bits = (reader: StateReader, names: readonly string[]) =>
    Object.fromEntries(names.map((n) => [n, reader.integer(n, 0, 1)]));
  const exception = events.object("exception");
  const interrupt = events.object("interrupt");
  const nmi = events.object("nmi");
  const flags = events.integer("flags", 0, 0xffff_ffff);
  if ((flags & ~KVM_VCPUEVENT_VALID_FLAGS) !== 0) {
    throw new StateError(
      events.fieldPath("flags"),
      `unknown flag bits 0x${(flags & ~KVM_VCPUEVENT_VALID_FLAGS).toString(16)}`,
    );
  }
  return {
    exception: {
      ...bits(exception, ["injected", "hasErrorCode", "pending"]),
      // Exceptions are vectors 0-31; KVM refuses any other.
      nr: exception.integer("nr", 0, 31),
      errorCode: exception.integer("errorCode", 0, 0xffff_ffff),
    } as VcpuEvents["exception"],
    interrupt: {
      ...bits(interrupt, ["injected", "soft"]),
      nr: interrupt.integer("nr", 0, 0xff),
      // KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI.
      shadow: interrupt.integer("shadow", 0, 3),
    } as VcpuEvents["interrupt"],
    nmi: {
      ...bits(nmi, ["injected", "masked"]),
      // A count of NMIs waiting (KVM keeps at most two).
      pending: nmi.integer("pending", 0, 0xff),
    } as VcpuEvents["nmi"],
    sipiVector: events.integer("sipiVector", 0, 0xff),
    flags,
    smi: bits(events.object("smi"), [
      "smm",
      "pending",
      "smmInsideNmi",
      "latchedInit",
    ]) as VcpuEvents["smi"],
    tripleFaultPending: events.integer("tripleFaultPending", 0, 1),
    exceptionHasPayload: events.integer("exceptionHasPayload", 0, 1),
    exceptionPayload: events.u64("exceptionPayload"),
  };
}

function parseDebugRegs(state: StateReader, support: VcpuStateSupport): DebugRegs | null {
  if (state.raw("debugregs") === null) return null;
  if (!support.debugregs) {
    throw new StateError(
      state.fieldPath("debugregs"),
      "this host's KVM cannot load debug registers (no KVM_CAP_DEBUGREGS)",
    );
  }
  const regs = state.object("debugregs");
  const db = regs.array("db", 4, parseU64);
  if (db.length !== 4) {
    throw new StateError(regs.fieldPath("db"), `expected 4 registers, got ${db.length}`);
  }
  // DR6 and DR7 are 32-bit registers; KVM refuses upper bits.
  return { db, dr6: regs.u64("dr6", 0xffff_ffffn), dr7: regs.u64("dr7", 0xffff_ffffn) };
}

/** QEMU's and Firecracker's tolerance: a guest TSC this close in frequency is not rescaled. */
export const TSC_KHZ_TOLERANCE_PPM = 250;

/**
 * Whether a guest TSC saved at `savedKhz` must be rescaled (KVM_SET_TSC_KHZ) on a vCPU
 * whose TSC runs at `hereKhz`: when they differ by more than the tolerance, and both are
 * known (KVM answers 0 when it does not know).
 */
export function tscNeedsRescaling(savedKhz: number, hereKhz: number): boolean {
  if (savedKhz === 0 || hereKhz === 0) return false;
  return Math.abs(hereKhz - savedKhz) * 1_000_000 > savedKhz * TSC_KHZ_TOLERANCE_PPM;
}
