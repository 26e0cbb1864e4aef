/**
 * The whole KVM-level state of a machine: the VM's (clock, PIT, PICs, IOAPIC) and every
 * vCPU's, in the order a restore must load them. The machine's owner (the VMM builder)
 * puts this beside its devices' states, keyed by id, and the guest RAM.
 *
 * Save with every vCPU paused (KVM_GET_VCPU_EVENTS is unsafe while other vCPUs run).
 * Restore into a machine built from the same config whose vCPUs have not run, after its
 * guest RAM holds the saved contents (kvmclock and async-PF MSRs point into it), and
 * before its devices are resumed.
 *
 * @module
 */

import { StateError, StateReader } from "../common/persist.ts";
import type { Vcpu } from "./vcpu.ts";
import {
  parseVcpuState,
  type VcpuState,
  type VcpuStateParts,
  type VcpuStateSupport,
} from "./vcpu_state.ts";
import type { Vm } from "./vm.ts";
import { parseVmState, type VmState, type VmStateParts } from "./vm_state.ts";

/** Layout versions of `KvmState` this build reads. */
export const KVM_STATE_VERSIONS = [1] as const;

/** KVM's largest vCPU count (KVM_MAX_VCPUS on x86): more in a state is malformed. */
const MAX_VCPUS = 4096;

/** The VM-level and per-vCPU KVM state of one machine. */
export interface KvmState {
  version: 1;
  vm: VmState;
  /** One per vCPU, in vCPU id order. */
  vcpus: VcpuState[];
}

/** Reads the KVM state of a machine whose vCPUs are all paused (or never ran). */
export function saveKvmState(
  vm: Vm,
  vcpus: readonly Vcpu[],
  support: VcpuStateSupport,
): KvmState {
  return { version: 1, vm: vm.save(), vcpus: vcpus.map((vcpu) => vcpu.save(support)) };
}

/**
 * Checks an untrusted machine KVM state against the vCPU ids of the machine it is for;
 * throws `StateError` naming the first bad field. A pure function (no ioctl).
 */
export function parseKvmState(
  value: unknown,
  vcpuIds: readonly number[],
  support: VcpuStateSupport,
): { vm: VmStateParts; vcpus: VcpuStateParts[] } {
  const state = new StateReader(value);
  state.version(KVM_STATE_VERSIONS);
  const vm = parseVmState(state.raw("vm"), state.fieldPath("vm"));
  const path = state.fieldPath("vcpus");
  const saved = state.array("vcpus", MAX_VCPUS, (entry) => entry);
  if (saved.length !== vcpuIds.length) {
    throw new StateError(
      path,
      `the state has ${saved.length} vCPUs, this machine ${vcpuIds.length}; restore into a machine built from the same config`,
    );
  }
  const vcpus = saved.map((entry, i) =>
    parseVcpuState(entry, vcpuIds[i], support, `${path}[${i}]`)
  );
  return { vm, vcpus };
}

/**
 * Loads `state` (untrusted) into `vm` and `vcpus`: the whole state is checked first, so
 * a malformed one throws `StateError` before any ioctl; then the VM-level state with
 * each vCPU's loaded between its irqchips and its PIT (see `Vm.restore`).
 */
export function restoreKvmState(
  vm: Vm,
  vcpus: readonly Vcpu[],
  state: unknown,
  support: VcpuStateSupport,
): void {
  parseKvmState(state, vcpus.map((vcpu) => vcpu.id), support);
  const { vm: vmState, vcpus: vcpuStates } = state as KvmState;
  vm.restore(vmState, () => {
    vcpuStates.forEach((vcpuState, i) => vcpus[i].restore(vcpuState, support));
  });
}
