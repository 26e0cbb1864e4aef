/**
 * The device-independent pieces of a machine: the vCPU-count check, the VM-level KVM
 * set-up every x86 machine needs (TSS, identity map, in-kernel irqchip and PIT), the
 * dispatch of vCPU accesses to the buses, and the signal that says why the VM ended. The
 * builder that adds devices and boots is vmm/builder.ts.
 *
 * @module
 */

import { MPTABLE_MAX_CPUS } from "./boot/mptable.ts";
import type { Bus } from "./bus.ts";
import type { Space } from "./exit_handler.ts";
import type { Kvm } from "./kvm.ts";
import { KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS } from "./layout.ts";
import type { VmEndReason } from "./vm_end.ts";
import { Vm } from "./vm.ts";

/** A configuration the host cannot run (too many vCPUs, too little memory...). */
export class MachineConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineConfigError";
  }
}

/** Refuses a vCPU count this host (or the MP table) cannot give a VM. */
export function checkVcpuCount(kvm: Kvm, cpus: number): void {
  const maxCpus = Math.min(kvm.maxVcpus(), MPTABLE_MAX_CPUS);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > maxCpus) {
    throw new MachineConfigError(
      `Cannot give the VM ${cpus} vCPUs: this host allows 1 to ${maxCpus}`,
    );
  }
}

/**
 * The VM-level set-up before guest RAM: the TSS and identity-map pages KVM needs below
 * 4 GiB, the in-kernel PIC/IOAPIC with the default GSI routes, and the in-kernel PIT.
 */
export function initVm(vm: Vm): void {
  vm.setTssAddress(KVM_TSS_ADDRESS);
  vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
  vm.createIrqchip();
  vm.setGsiRouting(Vm.defaultRoutes());
  vm.createPit();
}

/** Serves a vCPU's PIO or MMIO access from a bus. */
export type BusAccess = (space: Space, isWrite: boolean, address: number, data: Uint8Array) => void;

/**
 * Sends each access to the PIO or the MMIO bus. Unclaimed reads float high, as on a real
 * bus (the bus leaves `data` as the vCPU thread filled it); with DENOVISOR_DEBUG set, each
 * unclaimed address is reported once.
 */
export function busAccess(pio: Bus, mmio: Bus): BusAccess {
  const unhandled = new Set<string>();
  return (space, isWrite, address, data) => {
    const bus = space === "pio" ? pio : mmio;
    const served = isWrite ? bus.write(address, data) : bus.read(address, data);
    if (served) return;
    const key = `${space}:${address}`;
    if (!unhandled.has(key)) {
      unhandled.add(key);
      if (Deno.env.get("DENOVISOR_DEBUG")) {
        console.error(
          `denovisor: unhandled ${space} ${isWrite ? "write" : "read"} at 0x${
            address.toString(16)
          }`,
        );
      }
    }
  };
}

/** Why the VM ended: the first `end()` wins, later ones are ignored. */
export class VmEndSignal {
  readonly ended: Promise<VmEndReason>;
  #resolve!: (reason: VmEndReason) => void;

  constructor() {
    this.ended = new Promise((resolve) => this.#resolve = resolve);
  }

  /** Ends the VM for `reason` (a no-op once it has ended). */
  end(reason: VmEndReason): void {
    this.#resolve(reason);
  }
}
