/**
 * Puts a fresh vCPU in the state a kernel expects: CPUID, MSRs and local APIC wiring for
 * every vCPU, and for the boot processor the registers of the chosen entry protocol.
 * Application processors are left waiting for INIT/SIPI, as on real hardware.
 *
 * @module
 */

import type { CpuidEntry } from "../ffi/kvm/cpuid.ts";
import { emptyRegs, resetFpu } from "../ffi/kvm/regs.ts";
import {
  APIC_DELIVERY_MODE,
  APIC_REG,
  lapicRegister,
  setLapicRegister,
  withDeliveryMode,
} from "../ffi/kvm/vcpu_structs.ts";
import type { BootSetup } from "./boot/linux_boot.ts";
import { vcpuCpuid } from "./cpuid.ts";
import { bootMsrs } from "./msrs.ts";
import type { Vcpu } from "./vcpu.ts";

/** CPUID, MSRs and LINT0/LINT1 wiring, for every vCPU. */
export function configureVcpu(
  vcpu: Vcpu,
  supportedCpuid: readonly CpuidEntry[],
  cpuCount: number,
): void {
  vcpu.setCpuid(vcpuCpuid(supportedCpuid, { apicId: vcpu.id, cpuCount }));
  vcpu.setMsrs(bootMsrs());
  // Virtual-wire mode, as firmware leaves it: the PIC's output arrives on LINT0 as
  // ExtINT, NMIs on LINT1. Without this a guest that never programs its IOAPIC gets no
  // timer interrupt.
  const lapic = vcpu.getLapic();
  const lint0 = lapicRegister(lapic, APIC_REG.LVT_LINT0);
  const lint1 = lapicRegister(lapic, APIC_REG.LVT_LINT1);
  setLapicRegister(lapic, APIC_REG.LVT_LINT0, withDeliveryMode(lint0, APIC_DELIVERY_MODE.EXTINT));
  setLapicRegister(lapic, APIC_REG.LVT_LINT1, withDeliveryMode(lint1, APIC_DELIVERY_MODE.NMI));
  vcpu.setLapic(lapic);
}

/** Registers of the boot processor for `entry`. */
export function configureBootVcpu(vcpu: Vcpu, entry: BootSetup): void {
  const sregs = vcpu.getSregs();
  const s = entry.segments;
  for (const name of ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const) {
    sregs[name] = { ...s[name] };
  }
  sregs.gdt = { ...s.gdt };
  sregs.idt = { ...s.idt };
  const control = entry.controlRegisters;
  sregs.cr0 = BigInt(control.cr0);
  sregs.cr4 = BigInt(control.cr4);
  sregs.efer = BigInt(control.efer);
  sregs.cr3 = entry.kind === "long64" ? BigInt(entry.pml4) : 0n;
  vcpu.setSregs(sregs);

  const regs = emptyRegs();
  regs.rip = BigInt(entry.entry);
  regs.rsp = regs.rbp = BigInt(entry.stackPointer);
  if (entry.kind === "long64") regs.rsi = BigInt(entry.bootParams);
  else regs.rbx = BigInt(entry.startInfo);
  vcpu.setRegs(regs);
  vcpu.setFpu(resetFpu());
}
