/**
 * Which devices a machine gets, with their ids, addresses, interrupts and transports: a
 * pure function of the machine config, so that every machine built (or, later, restored)
 * from one config has the same devices in the same places, and tests can check the
 * layout without KVM. The device manager (vmm/device_manager.ts) puts each device where
 * its plan says.
 *
 * @module
 */

import type { Transport } from "../common/enums.ts";
import { DenovisorError } from "../common/errors.ts";
import {
  COM1_IRQ,
  COM1_PORT,
  I8042_AUX_IRQ,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_KEYBOARD_IRQ,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_PORT_COUNT,
  RTC_IRQ,
  RTC_PORT,
  VIRTIO_MMIO_IRQS,
  VIRTIO_MMIO_START,
  VIRTIO_MMIO_WINDOW,
} from "../core/layout.ts";
import { RTC_PORT_COUNT } from "../devices/legacy/rtc.ts";
import { SERIAL_PORT_COUNT } from "../devices/legacy/serial.ts";
import { VIRTIO_MMIO_SIZE } from "../devices/virtio/mmio_transport.ts";
import type { RateLimiterConfig } from "../devices/virtio/rate_limiter.ts";
import {
  BALLOON_ID,
  CONSOLE_ID,
  diskName,
  FIXED_DEVICE_IDS,
  I8042_ID,
  nicName,
  PCI_HOST_ID,
  RNG_ID,
  RTC_ID,
  SERIAL_ID,
} from "./device_names.ts";
import type { VmmDiskConfig, VmmMachineConfig, VmmNicConfig } from "./vmm_config.ts";

/** PCI bus 0 has 32 slots; the host bridge holds slot 0. */
const PCI_DEVICE_SLOTS = 31;

/** A port range on the PIO bus. */
export interface PortRange {
  base: number;
  count: number;
}

/** A legacy device: fixed id, fixed ports, fixed ISA interrupts. */
export interface LegacyDevicePlan {
  id: string;
  kind: "serial" | "i8042" | "rtc" | "pci-host";
  ports: PortRange[];
  irqs: number[];
}

/** Where a virtio device's transport goes: a virtio-mmio window, or a PCI slot. */
export type TransportPlan =
  | { kind: "mmio"; base: number; size: number; irq: number }
  | { kind: "pci"; slot: number };

/** What a virtio device is, with the part of the config that builds it. */
export type VirtioDeviceSpec =
  | { kind: "disk"; disk: VmmDiskConfig }
  | { kind: "nic"; nic: VmmNicConfig }
  | { kind: "rng"; rateLimit?: RateLimiterConfig }
  | { kind: "balloon" }
  | { kind: "console" };

/** A virtio device: its id, what it is and where its transport goes. */
export type VirtioDevicePlan = VirtioDeviceSpec & { id: string; transport: TransportPlan };

/** Every device of a machine, in the order they are built. */
export interface DevicePlan {
  legacy: LegacyDevicePlan[];
  virtio: VirtioDevicePlan[];
}

/** A config whose devices do not fit the machine (too many on a transport, an id twice). */
export class DevicePlanError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The legacy devices every machine has, at the PC's addresses. */
export function legacyDevicePlan(): LegacyDevicePlan[] {
  return [
    {
      id: PCI_HOST_ID,
      kind: "pci-host",
      ports: [{ base: PCI_CONFIG_ADDRESS_PORT, count: PCI_CONFIG_PORT_COUNT }],
      irqs: [],
    },
    {
      id: SERIAL_ID,
      kind: "serial",
      ports: [{ base: COM1_PORT, count: SERIAL_PORT_COUNT }],
      irqs: [COM1_IRQ],
    },
    {
      id: I8042_ID,
      kind: "i8042",
      // Two one-port views, so that port 0x61 (the PIT's speaker port, in KVM) stays free.
      ports: [{ base: I8042_DATA_PORT, count: 1 }, { base: I8042_COMMAND_PORT, count: 1 }],
      irqs: [I8042_KEYBOARD_IRQ, I8042_AUX_IRQ],
    },
    {
      id: RTC_ID,
      kind: "rtc",
      ports: [{ base: RTC_PORT, count: RTC_PORT_COUNT }],
      irqs: [RTC_IRQ],
    },
  ];
}

/** The id of the disk at `index`: its own, or its Linux name. */
export function diskId(disk: VmmDiskConfig, index: number): string {
  return disk.id ?? diskName(index);
}

/** The id of the NIC at `index`: its own, or net0, net1... */
export function nicId(nic: VmmNicConfig, index: number): string {
  return nic.id ?? nicName(index);
}

/**
 * Plans the devices of `config`: disks, NICs, rng, balloon and virtio console in that
 * order (the order their PCI slots and virtio-mmio windows are given out in).
 * @throws {DevicePlanError} for an id used twice or too many devices on a transport
 */
export function planDevices(config: VmmMachineConfig): DevicePlan {
  const other = config.transport ?? "pci";
  const specs: Array<{ id: string; transport: Transport; spec: VirtioDeviceSpec }> = [
    ...config.disks.map((disk, index) => ({
      id: diskId(disk, index),
      transport: disk.transport,
      spec: { kind: "disk", disk } as const,
    })),
    ...config.nics.map((nic, index) => ({
      id: nicId(nic, index),
      transport: nic.transport,
      spec: { kind: "nic", nic } as const,
    })),
  ];
  if (config.rng) {
    specs.push({ id: RNG_ID, transport: other, spec: { kind: "rng", ...config.rng } });
  }
  if (config.balloon) specs.push({ id: BALLOON_ID, transport: other, spec: { kind: "balloon" } });
  if (config.virtioConsole) {
    specs.push({ id: CONSOLE_ID, transport: other, spec: { kind: "console" } });
  }
  const seen = new Set<string>(FIXED_DEVICE_IDS);
  for (const { id, spec } of specs) {
    if (spec.kind !== "disk" && spec.kind !== "nic") continue;
    if (seen.has(id)) {
      throw new DevicePlanError(
        `Device id '${id}' is taken; give each disk and NIC an id of its own`,
      );
    }
    seen.add(id);
  }
  let mmioIndex = 0;
  let pciIndex = 0;
  const virtio = specs.map(({ id, transport, spec }): VirtioDevicePlan => {
    if (transport === "mmio") {
      const index = mmioIndex++;
      const irq = VIRTIO_MMIO_IRQS[index];
      if (irq === undefined) {
        throw new DevicePlanError(
          `Cannot add ${id} on virtio-mmio: at most ${VIRTIO_MMIO_IRQS.length} ` +
            `virtio-mmio devices fit; put the others on PCI (transport=pci)`,
        );
      }
      const base = VIRTIO_MMIO_START + index * VIRTIO_MMIO_WINDOW;
      return { ...spec, id, transport: { kind: "mmio", base, size: VIRTIO_MMIO_SIZE, irq } };
    }
    // PciBus gives out the lowest free slot, so the nth PCI device lands in slot n.
    const slot = ++pciIndex;
    if (slot > PCI_DEVICE_SLOTS) {
      throw new DevicePlanError(
        `Cannot add ${id} on PCI: at most ${PCI_DEVICE_SLOTS} PCI devices fit on bus 0; ` +
          `put the others on virtio-mmio (transport=mmio)`,
      );
    }
    return { ...spec, id, transport: { kind: "pci", slot } };
  });
  return { legacy: legacyDevicePlan(), virtio };
}

/**
 * The virtio devices of a plan in words, for the VMM's log:
 * "vda (pci 00:01.0), rng0 (mmio 0xd0000000 irq 5)".
 */
export function describeVirtioPlan(plan: DevicePlan): string {
  if (plan.virtio.length === 0) return "no virtio devices";
  return plan.virtio.map(({ id, transport }) =>
    transport.kind === "pci"
      ? `${id} (pci 00:${transport.slot.toString(16).padStart(2, "0")}.0)`
      : `${id} (mmio 0x${transport.base.toString(16)} irq ${transport.irq})`
  ).join(", ");
}
