/**
 * Setting a vCPU up for the small hand-assembled real-mode guests of the KVM unit tests.
 *
 * @module
 */

import { emptyRegs } from "../../ffi/kvm/regs.ts";
import type { Vcpu } from "../vcpu.ts";

/** Points `vcpu` at real-mode code at `address`: CS base and selector 0, RIP = `address`. */
export function enterRealModeAt(vcpu: Vcpu, address: number): void {
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0n;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);
  const regs = emptyRegs();
  regs.rip = BigInt(address);
  vcpu.setRegs(regs);
}
