/**
 * virtio-pci, modern interface only (virtio 1.2, section 4.1): a `PciFunction` with one
 * 16 KiB 64-bit memory BAR holding the common configuration, the ISR byte, the notify
 * area, the device configuration and the MSI-X table and PBA (the PCI layer emulates
 * those two). Vendor-specific capabilities point the driver at each structure.
 *
 * BAR 0 layout:
 *
 * | offset | length          | what                                   |
 * | ------ | --------------- | -------------------------------------- |
 * | 0x0000 | 0x38            | common configuration (cfg_type 1)      |
 * | 0x0800 | 4               | ISR status (cfg_type 3)                |
 * | 0x0c00 | 4 x queues      | notify area (cfg_type 2, multiplier 4) |
 * | 0x1000 | configSize      | device configuration (cfg_type 4)      |
 * | 0x2000 | 16 x vectors    | MSI-X table (PCI layer)                |
 * | 0x3000 | 8 x vectors/64  | MSI-X PBA (PCI layer)                  |
 *
 * The VIRTIO_PCI_CAP_PCI_CFG window (cfg_type 5) is not offered: reading through it needs
 * a read hook on `PciCapability`, which the PCI contract does not have. Linux does not use
 * it; firmware that cannot map BARs would.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { GuestAddress, GuestMemory } from "../../core/guest_memory.ts";
import type { BusDevice } from "../bus_device.ts";
import type {
  PciBar,
  PciCapability,
  PciFunction,
  PciInterrupts,
  PciMsixLayout,
} from "../pci/pci_device.ts";
import { CommonConfigRegisters } from "./pci_common_config.ts";
import {
  type CreateQueue,
  type NotifyRegion,
  TransportState,
  VIRTIO_MSI_NO_VECTOR,
} from "./transport_state.ts";
import { OnceLog } from "./once_log.ts";
import type { PciConfigPersist, PciConfigSpaceState } from "../pci/config_space_state.ts";
import {
  type Persistable,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import type { VirtioTransportState } from "./transport_persist.ts";
import { readNullable } from "../state_fields.ts";
import { VIRTIO_ID, type VirtioDevice } from "./virtio_device.ts";

/** Red Hat's virtio vendor ID. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern device IDs are this plus the virtio device type. */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** Subsystem ID (QEMU's; non-transitional devices should use 0x40 or more). */
export const VIRTIO_PCI_SUBSYSTEM_ID = 0x1100;

/** Where each structure lives in BAR 0. */
export const VIRTIO_PCI_LAYOUT = {
  BAR_INDEX: 0,
  BAR_SIZE: 0x4000,
  COMMON: 0x0000,
  COMMON_LENGTH: 0x38,
  ISR: 0x0800,
  ISR_LENGTH: 4,
  NOTIFY: 0x0c00,
  NOTIFY_OFF_MULTIPLIER: 4,
  DEVICE: 0x1000,
  DEVICE_MAX_LENGTH: 0x1000,
  MSIX_TABLE: 0x2000,
  MSIX_PBA: 0x3000,
  /** The notify area and the MSI-X table each have room for this many queues. */
  MAX_QUEUES: 255,
} as const;

/** virtio_pci_cap cfg_type values. */
export const VIRTIO_PCI_CAP = {
  COMMON_CFG: 1,
  NOTIFY_CFG: 2,
  ISR_CFG: 3,
  DEVICE_CFG: 4,
  PCI_CFG: 5,
} as const;

/** PCI capability ID of the virtio structures. */
export const PCI_CAP_ID_VENDOR = 0x09;

// Class codes as QEMU gives them (Linux's virtio_pci matches on vendor/device only).
const CLASS_CODES: Record<number, number> = {
  [VIRTIO_ID.BLOCK]: 0x010000, // mass storage, SCSI (QEMU's virtio-blk-pci)
  [VIRTIO_ID.NET]: 0x020000, // network, Ethernet
  [VIRTIO_ID.CONSOLE]: 0x078000, // communication, other
};
const CLASS_OTHER = 0x00ff00; // what QEMU gives rng, balloon and the rest

/** Thrown when a device cannot be put behind this transport. */
export class VirtioPciError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Construction options of a virtio-pci transport. */
export interface PciTransportOptions {
  readonly memory: GuestMemory;
  readonly createQueue: CreateQueue;
  readonly subsystemId?: number;
  readonly log?: (message: string) => void;
}

/** Called with the new and the old notify regions when the guest moves BAR 0. */
export type NotifyRegionsListener = (
  regions: NotifyRegion[],
  previous: NotifyRegion[],
) => void;

/**
 * A virtio-pci device as plain JSON: its PCI configuration space (command, BARs, MSI-X
 * table and PBA, INTx level), the ISR byte, and the transport state with the device's own.
 */
export interface VirtioPciState extends VersionedState {
  readonly version: 1;
  /** The ISR status byte (bits 0-1). */
  readonly isr: number;
  /** The function's configuration space; null if it was never put on a bus. */
  readonly config: PciConfigSpaceState | null;
  readonly transport: VirtioTransportState;
}

/** One virtio device as a modern virtio-pci function. */
export class PciTransport implements PciFunction, Persistable<VirtioPciState> {
  readonly state: TransportState;
  readonly vendorId = VIRTIO_PCI_VENDOR_ID;
  readonly deviceId: number;
  readonly subsystemVendorId = VIRTIO_PCI_VENDOR_ID;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revisionId = 1;
  readonly interruptPin = 1;
  readonly bars: readonly PciBar[];
  readonly capabilities: readonly PciCapability[];
  readonly msix: PciMsixLayout;

  readonly #common: CommonConfigRegisters;
  readonly #listeners = new Set<NotifyRegionsListener>();
  readonly #log: OnceLog;
  #interrupts?: PciInterrupts;
  #config?: PciConfigPersist;
  #isr = 0;
  #barAddress: GuestAddress = 0;

  constructor(device: VirtioDevice, options: PciTransportOptions) {
    const queues = device.queueSizes.length;
    if (queues > VIRTIO_PCI_LAYOUT.MAX_QUEUES) {
      throw new VirtioPciError(
        `${device.name} has ${queues} queues but virtio-pci here supports ${VIRTIO_PCI_LAYOUT.MAX_QUEUES}; use fewer queues`,
      );
    }
    if (device.configSize > VIRTIO_PCI_LAYOUT.DEVICE_MAX_LENGTH) {
      throw new VirtioPciError(
        `${device.name} has ${device.configSize} configuration bytes but at most 4096 fit; shrink it`,
      );
    }
    this.#log = new OnceLog(options.log);
    this.deviceId = VIRTIO_PCI_DEVICE_ID_BASE + device.type;
    this.subsystemId = options.subsystemId ?? VIRTIO_PCI_SUBSYSTEM_ID;
    this.classCode = CLASS_CODES[device.type] ?? CLASS_OTHER;
    this.msix = {
      vectors: queues + 1,
      bar: VIRTIO_PCI_LAYOUT.BAR_INDEX,
      tableOffset: VIRTIO_PCI_LAYOUT.MSIX_TABLE,
      pbaOffset: VIRTIO_PCI_LAYOUT.MSIX_PBA,
    };
    this.state = new TransportState({
      device,
      memory: options.memory,
      createQueue: options.createQueue,
      msixVectors: this.msix.vectors,
      log: options.log,
      interrupt: {
        usedBuffer: (queue) => this.#signal(0, this.state.queueMsixVector(queue)),
        configChanged: () => this.#signal(1, this.state.configMsixVector),
      },
      onReset: () => this.#clearIsr(),
    });
    this.#common = new CommonConfigRegisters(this.state, (message) => this.#logOnce(message));
    const bar: BusDevice = {
      read: (offset, data) => this.#readBar(offset, data),
      write: (offset, data) => this.#writeBar(offset, data),
    };
    this.bars = [{
      index: VIRTIO_PCI_LAYOUT.BAR_INDEX,
      size: VIRTIO_PCI_LAYOUT.BAR_SIZE,
      kind: "mem64",
      device: bar,
    }];
    this.capabilities = virtioCapabilities(queues, device.configSize);
  }

  /** The ISR status byte (without reading, hence without clearing it). */
  get isr(): number {
    return this.#isr;
  }

  attach(interrupts: PciInterrupts, config?: PciConfigPersist): void {
    this.#interrupts = interrupts;
    this.#config = config;
  }

  /** The whole function (config space, ISR, transport, device state); machine paused. */
  save(): VirtioPciState {
    return {
      version: 1,
      isr: this.#isr,
      config: this.#config?.save() ?? null,
      transport: this.state.save(),
    };
  }

  /**
   * Restores a saved function (untrusted: every part is checked before any changes; a bad
   * state throws `StateError`). The config space goes first, so BARs are in place (the
   * notify regions move with BAR 0) and MSI-X routes are programmed before the device is
   * activated again. The device serves nothing until `kick()`, on resume.
   */
  restore(state: unknown, path = "state"): void {
    const r = new StateReader(state, path);
    r.version([1]);
    const isr = r.integer("isr", 0, 3);
    const config = this.#config;
    const commitConfig = readNullable(r, "config", (name) => {
      if (config === undefined) {
        throw new StateError(r.fieldPath(name), "this function is on no bus; expected null");
      }
      return config.prepareRestore(r.raw(name), r.fieldPath(name));
    });
    if (config !== undefined && commitConfig === undefined) {
      throw new StateError(r.fieldPath("config"), "is null but the function is on a bus");
    }
    const commitTransport = this.state.prepareRestore(r.raw("transport"), r.fieldPath("transport"));
    commitConfig?.();
    commitTransport();
    this.#isr = isr;
  }

  /** Serves what the driver queued before the snapshot; call when the vCPUs resume. */
  kick(): void {
    this.state.kick();
  }

  barMoved(index: number, address: number): void {
    if (index !== VIRTIO_PCI_LAYOUT.BAR_INDEX || address === this.#barAddress) return;
    const previous = this.notifyRegions();
    this.#barAddress = address;
    const regions = this.notifyRegions();
    for (const listener of this.#listeners) listener(regions, previous);
  }

  /**
   * A notification for `queue` caught by an ioeventfd: route it here rather than to the
   * device, so that kicks before DRIVER_OK or after a failure stay ignored.
   */
  notify(queue: number): void {
    this.state.notify(queue);
  }

  /**
   * Where the driver notifies each queue, for ioeventfds: a 16-bit write of the queue index
   * (spec 4.1.5.2) at the queue's slot in the notify area. Empty while BAR 0 is unmapped.
   */
  notifyRegions(): NotifyRegion[] {
    if (this.#barAddress === 0) return [];
    return this.state.device.queueSizes.map((_, queue) => ({
      address: this.#barAddress + VIRTIO_PCI_LAYOUT.NOTIFY +
        queue * VIRTIO_PCI_LAYOUT.NOTIFY_OFF_MULTIPLIER,
      length: 2,
      datamatch: queue,
      queue,
    }));
  }

  /** Calls `listener` whenever the notify regions move; returns a function that unsubscribes. */
  onNotifyRegionsChanged(listener: NotifyRegionsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** ISR bit 0 (queue) or 1 (config), then MSI-X `vector` or INTx (spec 4.1.5.3-4). */
  #signal(isrBit: 0 | 1, vector: number): void {
    const interrupts = this.#interrupts;
    if (interrupts?.msixEnabled) {
      // The config bit is set even with MSI-X (spec 4.1.5.3); queues use only the vector.
      if (isrBit === 1) this.#isr |= 2;
      // NO_VECTOR with MSI-X on means the driver wants no interrupt for this event.
      if (vector !== VIRTIO_MSI_NO_VECTOR) interrupts.msix(vector);
      return;
    }
    this.#isr |= 1 << isrBit;
    interrupts?.setIntx(true);
  }

  #clearIsr(): void {
    this.#isr = 0;
    this.#interrupts?.setIntx(false);
  }

  #readBar(offset: number, data: Uint8Array): void {
    data.fill(0);
    const L = VIRTIO_PCI_LAYOUT;
    if (offset < L.COMMON + L.COMMON_LENGTH) {
      this.#common.read(offset - L.COMMON, data);
    } else if (offset === L.ISR) {
      // Read-to-clear, and the read is what deasserts INTx (spec 4.1.4.5).
      data[0] = this.#isr;
      this.#clearIsr();
    } else if (offset >= L.DEVICE && offset < L.DEVICE + L.DEVICE_MAX_LENGTH) {
      this.state.readConfig(offset - L.DEVICE, data);
    } else {
      this.#logOnce(`the driver read unused BAR offset 0x${offset.toString(16)}`);
    }
  }

  #writeBar(offset: number, data: Uint8Array): void {
    const L = VIRTIO_PCI_LAYOUT;
    const notifyEnd = L.NOTIFY + this.state.queueCount * L.NOTIFY_OFF_MULTIPLIER;
    if (offset < L.COMMON + L.COMMON_LENGTH) {
      this.#common.write(offset - L.COMMON, data);
    } else if (offset >= L.NOTIFY && offset < notifyEnd) {
      // The slot names the queue; the value written is the same index (no NOTIFICATION_DATA).
      this.state.notify(Math.floor((offset - L.NOTIFY) / L.NOTIFY_OFF_MULTIPLIER));
    } else if (offset >= L.DEVICE && offset < L.DEVICE + L.DEVICE_MAX_LENGTH) {
      this.state.writeConfig(offset - L.DEVICE, data);
    } else {
      this.#logOnce(`the driver wrote unused BAR offset 0x${offset.toString(16)}`);
    }
  }

  #logOnce(message: string): void {
    this.#log.log(message, `${this.state.device.name}: ${message}`);
  }
}

/** The virtio vendor capabilities (struct virtio_pci_cap without cap_vndr/cap_next). */
function virtioCapabilities(queues: number, configSize: number): PciCapability[] {
  const L = VIRTIO_PCI_LAYOUT;
  const caps = [
    virtioCap(VIRTIO_PCI_CAP.COMMON_CFG, L.COMMON, L.COMMON_LENGTH),
    virtioCap(
      VIRTIO_PCI_CAP.NOTIFY_CFG,
      L.NOTIFY,
      queues * L.NOTIFY_OFF_MULTIPLIER,
      L.NOTIFY_OFF_MULTIPLIER,
    ),
    virtioCap(VIRTIO_PCI_CAP.ISR_CFG, L.ISR, L.ISR_LENGTH),
  ];
  // The device structure is only required when there is device configuration (4.1.4.6).
  if (configSize > 0) caps.push(virtioCap(VIRTIO_PCI_CAP.DEVICE_CFG, L.DEVICE, configSize));
  return caps;
}

function virtioCap(
  cfgType: number,
  offset: number,
  length: number,
  notifyOffMultiplier?: number,
): PciCapability {
  // cap_len counts the whole capability, including the ID and next bytes the PCI layer adds.
  const body = new Uint8Array(notifyOffMultiplier === undefined ? 14 : 18);
  const view = new DataView(body.buffer);
  body[0] = body.length + 2; // cap_len
  body[1] = cfgType;
  body[2] = VIRTIO_PCI_LAYOUT.BAR_INDEX;
  body[3] = 0; // id: one structure of each type
  view.setUint32(6, offset, true);
  view.setUint32(10, length, true);
  if (notifyOffMultiplier !== undefined) view.setUint32(14, notifyOffMultiplier, true);
  return { id: PCI_CAP_ID_VENDOR, body };
}
