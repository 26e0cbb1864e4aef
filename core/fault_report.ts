/**
 * What a vCPU was doing when the guest died: RIP, CPL, mode and instruction bytes.
 *
 * @module
 */

import type { GuestMemory } from "./guest_memory.ts";
import type { Vcpu } from "./vcpu.ts";
import type { FaultReport } from "./vm_end.ts";

const CR0_PE = 1n;
const EFER_LMA = 1n << 10n;
const MAX_INSTRUCTION = 15;

/** Collects a `FaultReport` from a stopped vCPU; never throws. */
export function faultReport(
  vcpu: Vcpu,
  memory: GuestMemory,
  instruction?: Uint8Array,
): FaultReport {
  try {
    const regs = vcpu.getRegs();
    const sregs = vcpu.getSregs();
    const mode = (sregs.cr0 & CR0_PE) === 0n
      ? "real"
      : (sregs.efer & EFER_LMA) !== 0n
      ? "long"
      : "protected";
    const cpl = mode === "real" ? 0 : sregs.cs.selector & 3;
    const linear = mode === "long" ? regs.rip : sregs.cs.base + regs.rip;
    return {
      vcpu: vcpu.id,
      rip: regs.rip,
      cpl,
      mode,
      instruction: instruction ?? readInstruction(vcpu, memory, linear),
    };
  } catch {
    return { vcpu: vcpu.id, rip: -1n, cpl: -1, mode: "unknown", instruction: new Uint8Array() };
  }
}

function readInstruction(vcpu: Vcpu, memory: GuestMemory, linear: bigint): Uint8Array {
  try {
    const { physical, valid } = vcpu.translate(linear);
    if (!valid) return new Uint8Array();
    const address = Number(physical);
    // Stop at the end of the page's region rather than failing on a straddle.
    for (let length = MAX_INSTRUCTION; length > 0; length--) {
      if (memory.contains(address, length)) return memory.read(address, length);
    }
  } catch {
    // An untranslatable RIP is reported as unreadable bytes.
  }
  return new Uint8Array();
}
