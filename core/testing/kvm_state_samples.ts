/**
 * Plausible saved KVM states for tests that need no KVM: what a 32-bit protected-mode
 * guest with the in-kernel irqchip and PIT would leave (values as KVM reports them).
 *
 * @module
 */

import { emptyRegs, encodeFpu, resetFpu, type Segment } from "../../ffi/kvm/regs.ts";
import { KVM_STRUCT_SIZE } from "../../ffi/kvm/ioctls.ts";
import type { PitChannelState } from "../../ffi/kvm/irqchip_structs.ts";
import { KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE } from "../../ffi/kvm/vm_structs.ts";
import { type VcpuState, vcpuStateFrom, type VcpuStateSupport } from "../vcpu_state.ts";
import { type VmState, vmStateFrom } from "../vm_state.ts";

/** What a typical x86-64 KVM host supports. */
export const SAMPLE_SUPPORT: VcpuStateSupport = {
  msrIndices: [0x10, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0x6e0, 0x4b564d00, 0x4b564d01],
  xsaveSize: KVM_STRUCT_SIZE.xsave,
  xcrs: true,
  debugregs: true,
};

const pitChannel = (mode: number, count: number): PitChannelState => ({
  count,
  latchedCount: 0,
  countLatched: 0,
  statusLatched: 0,
  status: 0,
  readState: 3,
  writeState: 3,
  writeLatch: 0,
  rwMode: 3,
  mode,
  bcd: 0,
  gate: 1,
});

/** A VM state with a 100 Hz PIT, remapped PICs and two IOAPIC pins routed. */
export function sampleVmState(): VmState {
  const pic = (irqBase: number, elcrMask: number) => ({
    lastIrr: 0,
    irr: 0,
    imr: 0xfe,
    isr: 0,
    priorityAdd: 0,
    irqBase,
    readRegSelect: 0,
    poll: 0,
    specialMask: 0,
    initState: 0,
    autoEoi: 0,
    rotateOnAutoEoi: 0,
    specialFullyNestedMode: 0,
    init4: 1,
    elcr: 0,
    elcrMask,
  });
  const redirtbl = Array.from({ length: 24 }, () => 0x10000n);
  redirtbl[2] = 0x30n;
  redirtbl[4] = 0x0100000000000034n;
  return vmStateFrom({
    clock: {
      clock: 123_456_789_000n,
      flags: KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME,
      realtime: 1_796_000_000_000_000_000n,
    },
    pit: {
      channels: [pitChannel(2, 11932), pitChannel(3, 0x10000), pitChannel(0, 0x10000)],
      flags: 0,
    },
    pics: [pic(0x20, 0xf8), pic(0x28, 0xde)],
    ioapic: { baseAddress: 0xfec00000n, ioregsel: 0x18, id: 0, irr: 0, redirtbl },
  });
}

const flat = (selector: number, type: number): Segment => ({
  base: 0n,
  limit: 0xffffffff,
  selector,
  type,
  present: 1,
  dpl: 0,
  db: 1,
  s: 1,
  l: 0,
  g: 1,
  avl: 0,
  unusable: 0,
});

/** vCPU `id` halted in 32-bit protected mode, timer in TSC-deadline mode. */
export function sampleVcpuState(id = 0): VcpuState {
  const regs = emptyRegs();
  regs.rip = 0x100123n;
  regs.rsp = 0x8ff0n;
  regs.rflags = 0x202n;
  const lapic = new Uint8Array(KVM_STRUCT_SIZE.lapic);
  const view = new DataView(lapic.buffer);
  view.setUint32(0x20, id << 24, true);
  view.setUint32(0xf0, 0x1ff, true);
  view.setUint32(0x320, 0x40020 | 0x20, true);
  const xsave = new Uint8Array(KVM_STRUCT_SIZE.xsave);
  xsave.set(encodeFpu(resetFpu()).subarray(0, 32));
  return vcpuStateFrom({
    id,
    cpuid: [
      {
        function: 0,
        index: 0,
        flags: 0,
        eax: 0xd,
        ebx: 0x756e6547,
        ecx: 0x6c65746e,
        edx: 0x49656e69,
      },
      {
        function: 1,
        index: 0,
        flags: 0,
        eax: 0x50654,
        ebx: id << 24,
        ecx: 0x81202000,
        edx: 0x0f8bfbff,
      },
      { function: 0xd, index: 1, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0 },
    ],
    regs,
    sregs: {
      cs: flat(0x10, 11),
      ds: flat(0x18, 3),
      es: flat(0x18, 3),
      fs: flat(0x18, 3),
      gs: flat(0x18, 3),
      ss: flat(0x18, 3),
      tr: { ...flat(0, 11), s: 0, db: 0, g: 0, limit: 0xffff },
      ldt: { ...flat(0, 2), s: 0, db: 0, g: 0, limit: 0xffff, present: 0, unusable: 1 },
      gdt: { base: 0x500n, limit: 0x1f },
      idt: { base: 0x600n, limit: 0x7ff },
      cr0: 0x11n,
      cr2: 0n,
      cr3: 0n,
      cr4: 0n,
      cr8: 0n,
      efer: 0n,
      apicBase: 0xfee00900n,
      interruptBitmap: [0n, 0n, 0n, 0n],
    },
    fpu: encodeFpu(resetFpu()),
    xsave,
    xcrs: [{ xcr: 0, value: 1n }],
    lapic,
    msrs: [
      { index: 0x10, data: 0x1_2345_6789n },
      { index: 0x174, data: 0x10n },
      { index: 0x1a0, data: 1n },
      { index: 0x277, data: 0x0007040600070406n },
      { index: 0x6e0, data: 0x1_2400_0000n },
      { index: 0x4b564d01, data: 0x9001n },
    ],
    events: {
      exception: { injected: 0, nr: 0, hasErrorCode: 0, pending: 0, errorCode: 0 },
      interrupt: { injected: 0, nr: 0, soft: 0, shadow: 0 },
      nmi: { injected: 0, pending: 0, masked: 0 },
      sipiVector: 0,
      flags: 0xd,
      smi: { smm: 0, pending: 0, smmInsideNmi: 0, latchedInit: 0 },
      tripleFaultPending: 0,
      exceptionHasPayload: 0,
      exceptionPayload: 0n,
    },
    debugregs: { db: [0n, 0n, 0n, 0n], dr6: 0xffff0ff0n, dr7: 0x400n },
    mpState: 3,
    tscKhz: 2_600_000,
  });
}
