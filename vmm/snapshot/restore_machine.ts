/**
 * Restores a machine from a state file, in two halves around the builder's construction
 * (vmm/builder.ts `restore()`):
 *
 *   1. `loadMachineState`, before anything of the machine exists: the state file is read
 *      and checked whole (header, checksum, document), its config must describe the
 *      config given, its RAM layout must be the machine's, every expected section must be
 *      there with its kind and none other, the KVM state must be valid, and this host's
 *      KVM must offer every CPU feature the saved vCPUs used. Only then is guest RAM
 *      prepared: the memory file mapped MAP_PRIVATE (restore time does not grow with RAM
 *      size; the file is never written), or inline RAM copied into anonymous memory.
 *   2. `restoreSetUp`, in place of the boot set-up, on the constructed machine: the vCPUs
 *      are created, the disks checked to be the saved images (unless forced), then the
 *      KVM state (VM, then vCPUs) and the devices are loaded, in dependency order.
 *
 * A restore that fails leaves nothing behind: the builder closes what was built and the
 * caller unmaps the prepared RAM.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { guestRamRegions } from "../../core/boot/e820.ts";
import type { Kvm } from "../../core/kvm.ts";
import { anonymousRam, mapRamFile } from "../../core/memory.ts";
import type { Vcpu } from "../../core/vcpu.ts";
import type { VcpuStateSupport } from "../../core/vcpu_state.ts";
import { configureVcpu } from "../../core/vcpu_setup.ts";
import { vcpuStateSupport } from "../../core/vcpu_state_support.ts";
import type { Vm } from "../../core/vm.ts";
import type { CpuidEntry } from "../../ffi/kvm/cpuid.ts";
import type { HostMapping } from "../../ffi/mman.ts";
import type { DeviceManager } from "../device_manager.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import {
  checkConfigMatch,
  checkDiskIdentities,
  type DiskIdentity,
  diskIdentity,
  parseDiskIdentities,
  parseSavedConfig,
  StateMismatchError,
} from "./config_match.ts";
import { checkCpuidCompatible } from "./cpuid_check.ts";
import {
  checkKvmSections,
  devicePieces,
  DISKS_SECTION,
  expectedSections,
  firmwarePieces,
  kvmSectionIds,
  matchSections,
  restoreKvmSections,
} from "./machine_sections.ts";
import type { MemoryRangeRecord, StateDocument, StateSection } from "./state_document.ts";
import { readStateFile } from "./state_file.ts";

/** A state file checked against its config, with guest RAM prepared. */
export interface LoadedState {
  document: StateDocument;
  sections: Map<string, StateSection>;
  /** The disks' identities at the save. */
  disks: DiskIdentity[];
  /** Guest RAM, one mapping per RAM range, holding the saved contents. */
  mappings: HostMapping[];
}

/** How to restore. */
export interface RestoreOptions {
  /** Restore even if a disk is not the image it was at the save. */
  force?: boolean;
}

/** Refuses RAM ranges other than the machine's for `memoryBytes`. */
export function checkRamLayout(ranges: readonly MemoryRangeRecord[], memoryBytes: number): void {
  const expected = guestRamRegions(memoryBytes);
  const same = ranges.length === expected.length &&
    ranges.every((r, i) => r.guestAddress === expected[i].start && r.size === expected[i].size);
  if (!same) {
    const describe = (list: ReadonlyArray<{ start: number; size: number }>) =>
      list.map((r) => `0x${r.start.toString(16)}+0x${r.size.toString(16)}`).join(", ");
    throw new StateMismatchError(
      `The state's guest RAM (${
        describe(ranges.map((r) => ({ start: r.guestAddress, size: r.size })))
      }) ` +
        `is not the layout of a ${memoryBytes}-byte machine (${describe(expected)})`,
    );
  }
}

/** What the restoring host's KVM offers, asked once (`hostFacts(kvm)`). */
export interface HostFacts {
  support: VcpuStateSupport;
  supportedCpuid: CpuidEntry[];
}

/** This host's facts, from `/dev/kvm`. */
export function hostFacts(kvm: Kvm): HostFacts {
  return { support: vcpuStateSupport(kvm), supportedCpuid: kvm.supportedCpuid() };
}

/**
 * The first half of a restore: everything checked against `config` and the host, then
 * guest RAM prepared. Nothing of a machine exists yet; a refusal leaves nothing mapped.
 */
export async function loadMachineState(
  config: VmmMachineConfig,
  stateFile: string,
  host: HostFacts,
): Promise<LoadedState> {
  const file = await readStateFile(stateFile);
  try {
    const { document } = file;
    checkConfigMatch(parseSavedConfig(document.config), config);
    checkRamLayout(document.memory.ranges, config.memoryBytes);
    const sections = matchSections(document.sections, expectedSections(config));
    const vcpus = checkKvmSections(sections, config.vcpus, host.support);
    vcpus.forEach((vcpu, index) => checkCpuidCompatible(vcpu.cpuid, host.supportedCpuid, index));
    const disks = parseDiskIdentities(
      sections.get(DISKS_SECTION.id)!.state,
      `${DISKS_SECTION.id}.state`,
    );
    const { ranges, fileSize } = document.memory;
    if (document.memory.storage === "file") {
      const memoryFile = join(dirname(stateFile), document.memory.file!);
      return { document, sections, disks, mappings: mapRamFile(memoryFile, ranges, fileSize) };
    }
    const mappings = anonymousRam(guestRamRegions(config.memoryBytes));
    try {
      const views = mappings.map((mapping) => mapping.bytes());
      // Each record was checked to lie inside one range (the machine's, checked above).
      await file.readInlineMemory((guestAddress, bytes) => {
        const index = ranges.findIndex((r) =>
          guestAddress >= r.guestAddress && guestAddress + bytes.length <= r.guestAddress + r.size
        );
        views[index].set(bytes, guestAddress - ranges[index].guestAddress);
      });
    } catch (error) {
      mappings.forEach((mapping) => mapping.unmap());
      throw error;
    }
    return { document, sections, disks, mappings };
  } finally {
    file.close();
  }
}

/** The constructed machine the second half works on. */
export interface RestoreParts {
  vm: Vm;
  devices: DeviceManager;
  /** Empty; the vCPUs are created into it (so that a failure closes them). */
  vcpus: Vcpu[];
}

/**
 * The second half of a restore, in place of the boot set-up: vCPUs created, disks
 * checked, KVM state and devices loaded. Guest RAM already holds the saved contents.
 */
export function restoreSetUp(
  config: VmmMachineConfig,
  host: HostFacts,
  parts: RestoreParts,
  loaded: LoadedState,
  options: RestoreOptions = {},
): void {
  const { vm, devices, vcpus } = parts;
  const current = [...devices.entries()].flatMap(([id, entry]) =>
    entry.kind === "disk" && entry.plan.kind === "disk"
      ? [diskIdentity(id, entry.plan.disk.path, entry.device.disk.size)]
      : []
  );
  checkDiskIdentities(loaded.disks, current, options.force ?? false);
  for (let id = 0; id < config.vcpus; id++) {
    vcpus.push(vm.createVcpu(id));
    // As a boot does, so that anything the state leaves out starts as at boot; the
    // state then overwrites CPUID, MSRs and the local APIC.
    configureVcpu(vcpus[id], host.supportedCpuid, config.vcpus);
  }
  restoreKvmSections(loaded.sections, vm, vcpus, host.support);
  const restored = new Set([DISKS_SECTION.id, ...kvmSectionIds(config.vcpus).map((s) => s.id)]);
  // The firmware platform last: its PCI functions' INTx levels need the irqchip and the bus.
  for (const piece of [...devicePieces(devices.entries()), ...firmwarePieces(devices)]) {
    const section = loaded.sections.get(piece.id);
    if (section === undefined || section.kind !== piece.kind) {
      throw new StateMismatchError(`The state has no ${piece.kind} section for ${piece.id}`);
    }
    piece.restore(section.state, `${piece.id}.state`);
    restored.add(piece.id);
  }
  // A section no piece took (a firmware boot built without its firmware image) is refused.
  for (const id of loaded.sections.keys()) {
    if (!restored.has(id)) {
      throw new StateMismatchError(
        `The state's section ${id} has no device in the machine built to restore it`,
      );
    }
  }
}
