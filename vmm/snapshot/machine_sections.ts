/**
 * A machine's state as sections keyed by stable id (docs/state-format.md): `vm` and
 * `vcpu0..` from core/kvm_state.ts, then every device of the device manager by its id,
 * with a kind that names what it is and where it sits ("serial", "pci-host",
 * "virtio-blk/pci", "virtio-net/mmio"...), so a state is never loaded into a device of
 * another kind or on another transport.
 *
 * Restore checks the whole set first — every expected section present with its kind, none
 * left over, the KVM state valid as a whole (before any ioctl) — and then loads in the
 * order the pieces depend on: the VM's irqchips and clock and the vCPUs (guest RAM already
 * holds the saved contents), the PCI bus and its 0xcf8 latch, the legacy devices, the
 * virtio transports (their MSI-X routes need the bus, their queues need RAM), and a
 * firmware boot's platform (`firmware:chipset`) last. Each device validates its own state
 * and names the failing field by the section's id.
 *
 * @module
 */

import { StateError, StateReader } from "../../common/persist.ts";
import { parseKvmState, restoreKvmState, saveKvmState } from "../../core/kvm_state.ts";
import type { Vcpu } from "../../core/vcpu.ts";
import type { VcpuStateParts, VcpuStateSupport } from "../../core/vcpu_state.ts";
import type { Vm } from "../../core/vm.ts";
import type { DeviceManager, ManagedDevice } from "../device_manager.ts";
import { planDevices, type VirtioDevicePlan } from "../device_plan.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import type { StateSection } from "./state_document.ts";

/** One stateful piece of a machine, as the section machinery sees it. */
export interface StatePiece {
  /** Its stable id: the section's id. */
  id: string;
  /** What it is: the section's kind, checked on restore. */
  kind: string;
  /** Its state as plain JSON (the machine is paused). */
  save(): unknown;
  /** Checks an untrusted state (a bad one throws `StateError` naming `path`) and loads it. */
  restore(state: unknown, path: string): void;
}

/** The layout version a section records: the state's own `version`, else 1. */
function versionOf(state: unknown): number {
  const version = (state as { version?: unknown } | null)?.version;
  return typeof version === "number" && Number.isInteger(version) && version >= 1 ? version : 1;
}

/** Saves every piece into a section. */
export function saveSections(pieces: readonly StatePiece[]): StateSection[] {
  return pieces.map((piece) => {
    const state = piece.save();
    return { id: piece.id, kind: piece.kind, version: versionOf(state), state };
  });
}

/**
 * Finds the section of each expected piece, checking its kind, and refuses a section
 * that belongs to no piece: a state of another machine layout is refused whole, before
 * anything is loaded.
 */
export function matchSections(
  sections: readonly StateSection[],
  expected: ReadonlyArray<{ id: string; kind: string }>,
): Map<string, StateSection> {
  const byId = new Map(sections.map((section) => [section.id, section]));
  const matched = new Map<string, StateSection>();
  for (const { id, kind } of expected) {
    const section = byId.get(id);
    if (section === undefined) {
      throw new StateError(
        "document.sections",
        `no section for ${id} (${kind}); the state belongs to a machine without it`,
      );
    }
    if (section.kind !== kind) {
      throw new StateError(
        `${id}.kind`,
        `the state has a ${section.kind}, this machine a ${kind}: restore with the config it was saved with`,
      );
    }
    matched.set(id, section);
  }
  for (const section of sections) {
    if (!matched.has(section.id)) {
      throw new StateError(
        `${section.id}`,
        `the state has a ${section.kind} that this machine does not: restore with the config it was saved with`,
      );
    }
  }
  return matched;
}

/** The section holding the disks' image identities (not a device: `:` is in no device id). */
export const DISKS_SECTION = { id: "host:disks", kind: "disk-images" } as const;

/** The virtio device types by the device manager's kinds. */
const VIRTIO_TYPE: Readonly<Record<string, string>> = {
  disk: "virtio-blk",
  nic: "virtio-net",
  rng: "virtio-rng",
  balloon: "virtio-balloon",
  console: "virtio-console",
};

/** The section kind of a device: its plan kind, and for virtio devices the transport. */
export function deviceKind(entry: ManagedDevice): string {
  switch (entry.kind) {
    case "pci-host":
    case "serial":
    case "i8042":
    case "rtc":
      return entry.kind;
    default:
      return virtioKind(entry.plan);
  }
}

function virtioKind(plan: VirtioDevicePlan): string {
  return `${VIRTIO_TYPE[plan.kind]}/${plan.transport.kind}`;
}

/**
 * Every section a state of a machine built from `config` must have, with its kind: the
 * KVM sections, every planned device, the disks' identities. Pure, so a state is checked
 * against its config before anything is built.
 */
export function expectedSections(config: VmmMachineConfig): Array<{ id: string; kind: string }> {
  const plan = planDevices(config);
  return [
    ...kvmSectionIds(config.vcpus),
    ...plan.legacy.map(({ id, kind }) => ({ id, kind })),
    ...plan.virtio.map((device) => ({ id: device.id, kind: virtioKind(device) })),
    ...(config.boot.kind === "firmware" ? [{ ...FIRMWARE_SECTION }] : []),
    { ...DISKS_SECTION },
  ];
}

/**
 * The section of a firmware boot's PC platform (not a planned device: `:` is in no device
 * id): the i440FX (its PAM registers, which re-map the BIOS area's KVM slots on restore),
 * PIIX3, ACPI PM, the reset register, fw_cfg and AHCI, with the PCI configuration spaces
 * of the ISA bridge and the AHCI controller (the bus saves only its host bridge's).
 */
export const FIRMWARE_SECTION = { id: "firmware:chipset", kind: "pc-i440fx" } as const;

/** The firmware platform of `devices` as a piece: none for a machine booted from a kernel. */
export function firmwarePieces(devices: DeviceManager): StatePiece[] {
  const platform = devices.firmware;
  if (platform === undefined) return [];
  const pci = devices.pciBus;
  const { isaBridge, ahci } = platform.pciSlots;
  const slots: Array<[string, number | undefined]> = [["isaBridge", isaBridge], ["ahci", ahci]];
  const spaces = slots.flatMap(([name, slot]) => {
    const space = slot === undefined ? undefined : pci.slot(slot);
    return space === undefined ? [] : [{ name, space }];
  });
  return [{
    ...FIRMWARE_SECTION,
    save: () => ({
      version: 1,
      platform: platform.save(),
      pci: Object.fromEntries(spaces.map(({ name, space }) => [name, space.save()])),
    }),
    restore: (state, path) => {
      const reader = new StateReader(state, path);
      reader.version([1]);
      const pciReader = reader.object("pci");
      for (const key of Object.keys(reader.raw("pci") as object)) {
        if (!spaces.some(({ name }) => name === key)) {
          throw new StateError(pciReader.fieldPath(key), "this machine has no such PCI function");
        }
      }
      // Everything checked before anything changes; the platform restores all or nothing.
      const apply = spaces.map(({ name, space }) => {
        if (!pciReader.has(name)) {
          throw new StateError(pciReader.fieldPath(name), "missing; this machine has one");
        }
        return space.prepareRestore(pciReader.raw(name), pciReader.fieldPath(name));
      });
      try {
        platform.restore(reader.raw("platform"));
      } catch (error) {
        if (error instanceof StateError) {
          // The platform's devices name their fields from "state": say whose state it is.
          const reason = error.message.replace(/^Saved state is invalid: /, "");
          throw new StateError(reader.fieldPath("platform"), reason);
        }
        throw error;
      }
      apply.forEach((commit) => commit());
    },
  }];
}

/** Restore order: the PCI bus first, then the legacy devices, the virtio transports last. */
function rank(entry: ManagedDevice): number {
  if (entry.kind === "pci-host") return 0;
  if (entry.kind === "serial" || entry.kind === "i8042" || entry.kind === "rtc") return 1;
  return 2;
}

/** The devices of a device manager as pieces, in restore order. */
export function devicePieces(devices: Iterable<[string, ManagedDevice]>): StatePiece[] {
  const entries = [...devices].map(([, entry]) => entry);
  entries.sort((a, b) => rank(a) - rank(b)); // stable: plan order within a rank
  return entries.map((entry) => ({ id: entry.id, kind: deviceKind(entry), ...access(entry) }));
}

function access(entry: ManagedDevice): Pick<StatePiece, "save" | "restore"> {
  switch (entry.kind) {
    case "pci-host":
      // The bus (its host bridge's config space) and the 0xcf8 address latch, as one piece.
      return {
        save: () => ({ version: 1, bus: entry.device.save(), latch: entry.mechanism.save() }),
        restore: (state, path) => {
          const { bus, latch } = pciHostParts(state, path);
          entry.device.restore(bus, `${path}.bus`);
          entry.mechanism.restore(latch, `${path}.latch`);
        },
      };
    case "serial":
    case "i8042":
    case "rtc": {
      const device = entry.device;
      return {
        save: () => device.save(),
        restore: (state, path) => device.restore(state, path),
      };
    }
    default: {
      const transport = entry.transport;
      return {
        save: () => transport.save(),
        restore: (state, path) => transport.restore(state, path),
      };
    }
  }
}

function pciHostParts(state: unknown, path: string): { bus: unknown; latch: unknown } {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new StateError(path, "expected an object");
  }
  const record = state as Record<string, unknown>;
  if (record.version !== 1) throw new StateError(`${path}.version`, "expected 1");
  return { bus: record.bus, latch: record.latch };
}

/** The `vm` and `vcpuN` sections of a paused machine. */
export function saveKvmSections(
  vm: Vm,
  vcpus: readonly Vcpu[],
  support: VcpuStateSupport,
): StateSection[] {
  const state = saveKvmState(vm, vcpus, support);
  return [
    { id: "vm", kind: "vm", version: state.vm.version, state: state.vm },
    ...state.vcpus.map((vcpu, index) => ({
      id: `vcpu${index}`,
      kind: "vcpu",
      version: versionOf(vcpu),
      state: vcpu,
    })),
  ];
}

/** The ids and kinds of the KVM sections of a machine with `vcpuCount` vCPUs. */
export function kvmSectionIds(vcpuCount: number): Array<{ id: string; kind: string }> {
  return [
    { id: "vm", kind: "vm" },
    ...Array.from({ length: vcpuCount }, (_, index) => ({ id: `vcpu${index}`, kind: "vcpu" })),
  ];
}

/** The KVM state the `vm` and `vcpuN` sections make up, as core/kvm_state.ts reads it. */
export function kvmStateOf(sections: Map<string, StateSection>, vcpuCount: number): unknown {
  return {
    version: 1,
    vm: sections.get("vm")?.state,
    vcpus: Array.from({ length: vcpuCount }, (_, index) => sections.get(`vcpu${index}`)?.state),
  };
}

/**
 * Checks the KVM state of the sections (pure: no ioctl) and returns each vCPU's parts
 * (their CPUID is compared with the host's before anything is built).
 */
export function checkKvmSections(
  sections: Map<string, StateSection>,
  vcpuCount: number,
  support: VcpuStateSupport,
): VcpuStateParts[] {
  const ids = Array.from({ length: vcpuCount }, (_, index) => index);
  return parseKvmState(kvmStateOf(sections, vcpuCount), ids, support).vcpus;
}

/** Loads the KVM sections into a machine whose vCPUs have not run. */
export function restoreKvmSections(
  sections: Map<string, StateSection>,
  vm: Vm,
  vcpus: readonly Vcpu[],
  support: VcpuStateSupport,
): void {
  restoreKvmState(vm, vcpus, kvmStateOf(sections, vcpus.length), support);
}
