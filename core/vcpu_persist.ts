/**
 * Saving and restoring one vCPU's KVM state, in the orders that matter.
 *
 * Save (Firecracker's order): the MP state first, because KVM_GET_MP_STATE delivers a
 * pending INIT/SIPI and that changes the registers read next; the vCPU events last.
 *
 * Restore (the order a C program moved a running guest between two VMs with on this
 * project's hosts, which also satisfies every pitfall in ROUND2-ANCHORS.md): CPUID, the
 * TSC frequency when the saving host's differed (KVM_SET_TSC_KHZ), then sregs (they carry the APIC base), regs, the FPU then XSAVE, XCRs, the local APIC (after
 * sregs, and before the MSRs: KVM only arms a TSC deadline once the APIC is in
 * TSC-deadline mode), the MSRs with IA32_TSC first and IA32_TSC_DEADLINE in a call of
 * its own after it, the vCPU events (after regs: KVM_SET_REGS drops a pending
 * exception), the debug registers, and the MP state last. Then KVM_KVMCLOCK_CTRL, so a
 * guest with kvmclock does not take the time it spent saved for a soft lockup.
 *
 * Both run on whichever thread calls them: KVM serializes ioctls on a vCPU fd, and only
 * KVM_RUN is tied to the vCPU's Worker, which is parked while the vCPU is paused.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import type { Persistable } from "../common/persist.ts";
import type { MsrEntry } from "../ffi/kvm/cpuid.ts";
import { decodeFpu } from "../ffi/kvm/regs.ts";
import { decodeVcpuEvents, encodeVcpuEvents } from "../ffi/kvm/vcpu_state_structs.ts";
import { lapicRegister } from "../ffi/kvm/vcpu_structs.ts";
import {
  isKvmParavirtualMsr,
  LAPIC_LVT_TIMER_OFFSET,
  msrRestoreBatches,
  rearmedTscDeadline,
} from "./msrs.ts";
import type { Vcpu } from "./vcpu.ts";
import {
  parseVcpuState,
  tscNeedsRescaling,
  type VcpuState,
  vcpuStateFrom,
  type VcpuStateSupport,
} from "./vcpu_state.ts";

/** KVM reads or writes at most 255 MSRs per call (MAX_IO_MSRS is 256). */
const MSR_BATCH = 200;

/** KVM refused a value of a state that passed validation (a host that differs). */
export class VcpuRestoreError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Reads the state of a vCPU that is not running. */
export function saveVcpu(vcpu: Vcpu, support: VcpuStateSupport): VcpuState {
  const mpState = vcpu.getMpState();
  const regs = vcpu.getRegs();
  const sregs = vcpu.getSregs();
  const fpu = vcpu.getFpu().raw;
  const xsave = support.xsaveSize > 0 ? vcpu.getXsave(support.xsaveSize) : null;
  const xcrs = support.xcrs ? vcpu.getXcrs() : null;
  const debugregs = support.debugregs ? vcpu.getDebugRegs() : null;
  const lapic = vcpu.getLapic();
  const cpuid = vcpu.cpuidSet();
  const msrs = rearmedTscDeadline(
    readMsrs(vcpu, support.msrIndices),
    lapicRegister(lapic, LAPIC_LVT_TIMER_OFFSET),
  );
  const tscKhz = vcpu.getTscKhz();
  const events = decodeVcpuEvents(vcpu.getVcpuEvents());
  return vcpuStateFrom({
    id: vcpu.id,
    cpuid,
    regs,
    sregs,
    fpu,
    xsave,
    xcrs,
    lapic,
    msrs,
    events,
    debugregs,
    mpState,
    tscKhz,
  });
}

/** Validates `state` whole, then loads it into a vCPU that has not run (order above). */
export function restoreVcpu(vcpu: Vcpu, state: unknown, support: VcpuStateSupport): void {
  const p = parseVcpuState(state, vcpu.id, support);
  vcpu.setCpuid(p.cpuid);
  matchTscFrequency(vcpu, p.tscKhz);
  vcpu.setSregs(p.sregs);
  vcpu.setRegs(p.regs);
  // The FPU struct first, then the XSAVE area over it: XSAVE only loads the components
  // its header marks in use, and the FPU struct fills the legacy area's other bytes as
  // they were, so both read back exactly as saved.
  vcpu.setFpu(decodeFpu(p.fpu));
  if (p.xsave !== null) vcpu.setXsave(p.xsave);
  if (p.xcrs !== null) vcpu.setXcrs(p.xcrs);
  vcpu.setLapic(p.lapic);
  for (const batch of msrRestoreBatches(p.msrs)) writeMsrs(vcpu, batch);
  vcpu.setVcpuEvents(encodeVcpuEvents(p.events));
  if (p.debugregs !== null) vcpu.setDebugRegs(p.debugregs);
  vcpu.setMpState(p.mpState);
  vcpu.notifyPaused();
}

/** `vcpu` as a `Persistable`, for code that collects a machine's pieces. */
export function vcpuPersistable(vcpu: Vcpu, support: VcpuStateSupport): Persistable<VcpuState> {
  return {
    save: () => saveVcpu(vcpu, support),
    restore: (state) => restoreVcpu(vcpu, state, support),
  };
}

/** Before the TSC is written: a guest TSC saved on a host with another frequency keeps its rate. */
function matchTscFrequency(vcpu: Vcpu, savedKhz: number): void {
  const hereKhz = vcpu.getTscKhz();
  if (!tscNeedsRescaling(savedKhz, hereKhz)) return;
  try {
    vcpu.setTscKhz(savedKhz);
  } catch (error) {
    throw new VcpuRestoreError(
      `The saved guest TSC ran at ${savedKhz} kHz, this host's at ${hereKhz} kHz, and KVM cannot rescale it (${
        error instanceof Error ? error.message : error
      }); restore on a host with the same TSC frequency or with TSC scaling`,
    );
  }
}

/**
 * Reads `indices`. KVM stops at the first MSR it cannot read for this vCPU (one its
 * CPUID lacks, say): that one holds no guest state, so it is skipped and reading goes on.
 */
function readMsrs(vcpu: Vcpu, indices: readonly number[]): MsrEntry[] {
  const read: MsrEntry[] = [];
  let rest = indices;
  while (rest.length > 0) {
    const batch = rest.slice(0, MSR_BATCH);
    const got = vcpu.getMsrs(batch);
    read.push(...got);
    rest = rest.slice(got.length < batch.length ? got.length + 1 : batch.length);
  }
  return read;
}

/** Writes `entries` in order; only a refused paravirtual MSR holding 0 may be skipped. */
function writeMsrs(vcpu: Vcpu, entries: readonly MsrEntry[]): void {
  let rest = entries;
  while (rest.length > 0) {
    const batch = rest.slice(0, MSR_BATCH);
    const written = vcpu.trySetMsrs(batch);
    if (written >= batch.length) {
      rest = rest.slice(batch.length);
      continue;
    }
    const refused = batch[written];
    if (!(isKvmParavirtualMsr(refused.index) && refused.data === 0n)) {
      throw new VcpuRestoreError(
        `KVM refused MSR 0x${refused.index.toString(16)} = 0x${
          refused.data.toString(16)
        } of the saved vCPU ${vcpu.id}; this host's KVM cannot load that state`,
      );
    }
    rest = rest.slice(written + 1);
  }
}
