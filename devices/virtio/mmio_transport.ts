/**
 * virtio-mmio version 2 (virtio 1.2, section 4.2.2): a 0x1000-byte register window with
 * the device configuration from 0x100, announced to Linux on its command line
 * (`virtio_mmio.device=4K@0xd0000000:5`). Interrupts leave through one edge-triggered
 * line (an irqfd on the device's GSI); queue notifications should arrive through an
 * ioeventfd on QueueNotify (see `notifyRegions()`), the register path being the fallback.
 *
 * @module
 */

import type { GuestAddress, GuestMemory } from "../../core/guest_memory.ts";
import type { BusDevice, InterruptTrigger } from "../bus_device.ts";
import {
  type CreateQueue,
  type NotifyRegion,
  type QueueAddressField,
  TransportState,
} from "./transport_state.ts";
import { OnceLog } from "./once_log.ts";
import { type Persistable, StateReader, type VersionedState } from "../../common/persist.ts";
import type { VirtioTransportState } from "./transport_persist.ts";
import type { VirtioDevice } from "./virtio_device.ts";

/** Size of one virtio-mmio device window. */
export const VIRTIO_MMIO_SIZE = 0x1000;
/** "virt" little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** QEMU's vendor ID ("QEMU"): what Linux and our guests are used to seeing. */
export const VIRTIO_MMIO_VENDOR_ID = 0x554d4551;

/** Register offsets of virtio-mmio version 2. */
export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** InterruptStatus bits. */
export const VIRTIO_MMIO_INT = { VRING: 1, CONFIG: 2 } as const;

/** Construction options of a virtio-mmio transport. */
export interface MmioTransportOptions {
  readonly memory: GuestMemory;
  readonly createQueue: CreateQueue;
  /** Guest physical base of the 0x1000 window (for `notifyRegions`). */
  readonly base: GuestAddress;
  /** The device's interrupt line (edge; the VMM wires an irqfd). */
  readonly irq: InterruptTrigger;
  readonly log?: (message: string) => void;
}

const QUEUE_ADDRESS_REGISTERS = new Map<number, [QueueAddressField, 0 | 1]>([
  [VIRTIO_MMIO.QUEUE_DESC_LOW, ["descTable", 0]],
  [VIRTIO_MMIO.QUEUE_DESC_HIGH, ["descTable", 1]],
  [VIRTIO_MMIO.QUEUE_DRIVER_LOW, ["availRing", 0]],
  [VIRTIO_MMIO.QUEUE_DRIVER_HIGH, ["availRing", 1]],
  [VIRTIO_MMIO.QUEUE_DEVICE_LOW, ["usedRing", 0]],
  [VIRTIO_MMIO.QUEUE_DEVICE_HIGH, ["usedRing", 1]],
]);

/** A virtio-mmio device as plain JSON: its registers, queues and the device's own state. */
export interface VirtioMmioState extends VersionedState {
  readonly version: 1;
  /** InterruptStatus bits not yet acknowledged. */
  readonly interruptStatus: number;
  readonly transport: VirtioTransportState;
}

/** One virtio device behind a virtio-mmio v2 register window. */
export class MmioTransport implements BusDevice, Persistable<VirtioMmioState> {
  readonly state: TransportState;
  readonly base: GuestAddress;
  readonly #irq: InterruptTrigger;
  readonly #log: OnceLog;
  #interruptStatus = 0;

  constructor(device: VirtioDevice, options: MmioTransportOptions) {
    this.base = options.base;
    this.#irq = options.irq;
    this.#log = new OnceLog(options.log);
    this.state = new TransportState({
      device,
      memory: options.memory,
      createQueue: options.createQueue,
      log: options.log,
      interrupt: {
        usedBuffer: () => this.#raise(VIRTIO_MMIO_INT.VRING),
        configChanged: () => this.#raise(VIRTIO_MMIO_INT.CONFIG),
      },
      onReset: () => this.#interruptStatus = 0,
    });
  }

  /** InterruptStatus as the driver would read it. */
  get interruptStatus(): number {
    return this.#interruptStatus;
  }

  /**
   * A notification for `queue` caught by an ioeventfd: route it here rather than to the
   * device, so that kicks before DRIVER_OK or after a failure stay ignored.
   */
  notify(queue: number): void {
    this.state.notify(queue);
  }

  /** The whole device (registers, queues, device state) as plain JSON; machine paused. */
  save(): VirtioMmioState {
    return { version: 1, interruptStatus: this.#interruptStatus, transport: this.state.save() };
  }

  /**
   * Restores a saved device (untrusted: checked in full first, a bad one throws
   * `StateError` and changes nothing). A running device is activated again but serves
   * nothing until `kick()`, which the VMM calls when it resumes the vCPUs.
   */
  restore(state: unknown, path = "state"): void {
    const r = new StateReader(state, path);
    r.version([1]);
    const interruptStatus = r.integer(
      "interruptStatus",
      0,
      VIRTIO_MMIO_INT.VRING | VIRTIO_MMIO_INT.CONFIG,
    );
    const commit = this.state.prepareRestore(r.raw("transport"), r.fieldPath("transport"));
    commit();
    this.#interruptStatus = interruptStatus;
  }

  /** Serves what the driver queued before the snapshot; call when the vCPUs resume. */
  kick(): void {
    this.state.kick();
  }

  /** QueueNotify writes to register as ioeventfds: 32-bit writes of the queue index. */
  notifyRegions(): NotifyRegion[] {
    return this.state.device.queueSizes.map((_, queue) => ({
      address: this.base + VIRTIO_MMIO.QUEUE_NOTIFY,
      length: 4,
      datamatch: queue,
      queue,
    }));
  }

  read(offset: number, data: Uint8Array): void {
    if (offset >= VIRTIO_MMIO.CONFIG) {
      this.state.readConfig(offset - VIRTIO_MMIO.CONFIG, data);
      return;
    }
    data.fill(0);
    if (!this.#isRegisterAccess(offset, data)) return;
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, this.#readRegister(offset), true);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= VIRTIO_MMIO.CONFIG) {
      this.state.writeConfig(offset - VIRTIO_MMIO.CONFIG, data);
      return;
    }
    if (!this.#isRegisterAccess(offset, data)) return;
    const value = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    this.#writeRegister(offset, value);
  }

  #readRegister(offset: number): number {
    const state = this.state;
    switch (offset) {
      case VIRTIO_MMIO.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO.VERSION:
        return 2;
      case VIRTIO_MMIO.DEVICE_ID:
        return state.device.type;
      case VIRTIO_MMIO.VENDOR_ID:
        return VIRTIO_MMIO_VENDOR_ID;
      case VIRTIO_MMIO.DEVICE_FEATURES:
        return state.features.readDevice();
      case VIRTIO_MMIO.QUEUE_NUM_MAX:
        return state.readQueueMaxSize();
      case VIRTIO_MMIO.QUEUE_READY:
        return state.readQueueReady() ? 1 : 0;
      case VIRTIO_MMIO.INTERRUPT_STATUS:
        return this.#interruptStatus;
      case VIRTIO_MMIO.STATUS:
        return state.status;
      // No shared memory regions: a length of all ones says "this region does not exist".
      case VIRTIO_MMIO.SHM_LEN_LOW:
      case VIRTIO_MMIO.SHM_LEN_HIGH:
      case VIRTIO_MMIO.SHM_BASE_LOW:
      case VIRTIO_MMIO.SHM_BASE_HIGH:
        return 0xffff_ffff;
      case VIRTIO_MMIO.CONFIG_GENERATION:
        return state.configGeneration;
    }
    const address = QUEUE_ADDRESS_REGISTERS.get(offset);
    if (address) return state.readQueueAddress(...address);
    // Write-only and reserved registers read as zero (Linux never reads them).
    return 0;
  }

  #writeRegister(offset: number, value: number): void {
    const state = this.state;
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES_SEL:
        state.features.deviceSelect = value;
        return;
      case VIRTIO_MMIO.DRIVER_FEATURES:
        state.features.writeDriver(value);
        return;
      case VIRTIO_MMIO.DRIVER_FEATURES_SEL:
        state.features.driverSelect = value;
        return;
      case VIRTIO_MMIO.QUEUE_SEL:
        state.queueSelect = value;
        return;
      case VIRTIO_MMIO.QUEUE_NUM:
        state.writeQueueSize(value);
        return;
      case VIRTIO_MMIO.QUEUE_READY:
        state.writeQueueReady((value & 1) === 1);
        return;
      case VIRTIO_MMIO.QUEUE_NOTIFY:
        // Without VIRTIO_F_NOTIFICATION_DATA the value is just the queue index.
        state.notify(value & 0xffff);
        return;
      case VIRTIO_MMIO.INTERRUPT_ACK:
        this.#interruptStatus &= ~value;
        return;
      case VIRTIO_MMIO.STATUS:
        state.writeStatus(value);
        return;
      case VIRTIO_MMIO.SHM_SEL:
        return;
    }
    const address = QUEUE_ADDRESS_REGISTERS.get(offset);
    if (address) {
      state.writeQueueAddress(...address, value);
      return;
    }
    this.#logOnce(
      "register-write",
      `the driver wrote read-only or reserved register 0x${offset.toString(16)}`,
    );
  }

  #raise(bit: number): void {
    this.#interruptStatus |= bit;
    // Edge-triggered: every event is an edge, so a driver that acked early sees the next one.
    this.#irq.trigger();
  }

  /** The spec allows only aligned 32-bit accesses to the registers below 0x100. */
  #isRegisterAccess(offset: number, data: Uint8Array): boolean {
    if (data.length === 4 && offset % 4 === 0) return true;
    this.#logOnce(
      "register-width",
      `the driver accessed register 0x${offset.toString(16)} with ${data.length} bytes (ignored)`,
    );
    return false;
  }

  #logOnce(key: string, message: string): void {
    this.#log.log(key, `${this.state.device.name}: ${message}`);
  }
}

/**
 * The kernel command-line fragment announcing a virtio-mmio device, in the syntax of
 * Linux's virtio_mmio.device= parameter (`<size>@<base>:<irq>`).
 */
export function mmioCmdlineFragment(base: GuestAddress, irq: number): string {
  return `virtio_mmio.device=4K@0x${base.toString(16)}:${irq}`;
}
