/**
 * The virtio-pci common configuration structure (virtio 1.2, section 4.1.4.3) mapped onto
 * `TransportState`. Each field must be accessed with its own width; 64-bit fields may also
 * be accessed as two 32-bit halves (Linux does that). Other accesses are ignored.
 *
 * @module
 */

import type { QueueAddressField, TransportState } from "./transport_state.ts";

/** Offsets of struct virtio_pci_common_cfg. */
export const VIRTIO_PCI_COMMON = {
  DEVICE_FEATURE_SELECT: 0x00,
  DEVICE_FEATURE: 0x04,
  DRIVER_FEATURE_SELECT: 0x08,
  DRIVER_FEATURE: 0x0c,
  CONFIG_MSIX_VECTOR: 0x10,
  NUM_QUEUES: 0x12,
  DEVICE_STATUS: 0x14,
  CONFIG_GENERATION: 0x15,
  QUEUE_SELECT: 0x16,
  QUEUE_SIZE: 0x18,
  QUEUE_MSIX_VECTOR: 0x1a,
  QUEUE_ENABLE: 0x1c,
  QUEUE_NOTIFY_OFF: 0x1e,
  QUEUE_DESC: 0x20,
  QUEUE_DRIVER: 0x28,
  QUEUE_DEVICE: 0x30,
} as const;

interface Field {
  readonly width: 1 | 2 | 4;
  read(): number;
  write?(value: number): void;
}

const C = VIRTIO_PCI_COMMON;

/** Reads and writes of the common configuration structure for one transport. */
export class CommonConfigRegisters {
  readonly #fields: Map<number, Field>;
  readonly #offence: (message: string) => void;

  /** `offence` receives a message for each access the driver got wrong (dedup is its job). */
  constructor(state: TransportState, offence: (message: string) => void) {
    this.#offence = offence;
    const address = (field: QueueAddressField, half: 0 | 1): Field => ({
      width: 4,
      read: () => state.readQueueAddress(field, half),
      write: (value) => state.writeQueueAddress(field, half, value),
    });
    this.#fields = new Map<number, Field>([
      [C.DEVICE_FEATURE_SELECT, {
        width: 4,
        read: () => state.features.deviceSelect,
        write: (value) => state.features.deviceSelect = value,
      }],
      [C.DEVICE_FEATURE, { width: 4, read: () => state.features.readDevice() }],
      [C.DRIVER_FEATURE_SELECT, {
        width: 4,
        read: () => state.features.driverSelect,
        write: (value) => state.features.driverSelect = value,
      }],
      [C.DRIVER_FEATURE, {
        width: 4,
        read: () => state.features.readDriver(),
        write: (value) => state.features.writeDriver(value),
      }],
      [C.CONFIG_MSIX_VECTOR, {
        width: 2,
        read: () => state.configMsixVector,
        write: (value) => state.writeConfigMsixVector(value),
      }],
      [C.NUM_QUEUES, { width: 2, read: () => state.queueCount }],
      [C.DEVICE_STATUS, {
        width: 1,
        read: () => state.status,
        write: (value) => state.writeStatus(value),
      }],
      [C.CONFIG_GENERATION, { width: 1, read: () => state.configGeneration }],
      [C.QUEUE_SELECT, {
        width: 2,
        read: () => state.queueSelect,
        write: (value) => state.queueSelect = value,
      }],
      [C.QUEUE_SIZE, {
        width: 2,
        read: () => state.readQueueSize(),
        write: (value) => state.writeQueueSize(value),
      }],
      [C.QUEUE_MSIX_VECTOR, {
        width: 2,
        read: () => state.readQueueMsixVector(),
        write: (value) => state.writeQueueMsixVector(value),
      }],
      [C.QUEUE_ENABLE, {
        width: 2,
        read: () => state.readQueueReady() ? 1 : 0,
        write: (value) => state.writeQueueReady((value & 1) === 1),
      }],
      // Queue N notifies at notify area + N * multiplier.
      [C.QUEUE_NOTIFY_OFF, {
        width: 2,
        read: () => state.queueSelect < state.queueCount ? state.queueSelect : 0,
      }],
      [C.QUEUE_DESC, address("descTable", 0)],
      [C.QUEUE_DESC + 4, address("descTable", 1)],
      [C.QUEUE_DRIVER, address("availRing", 0)],
      [C.QUEUE_DRIVER + 4, address("availRing", 1)],
      [C.QUEUE_DEVICE, address("usedRing", 0)],
      [C.QUEUE_DEVICE + 4, address("usedRing", 1)],
    ]);
  }

  /** Fills `data` with the field(s) at `offset`; a malformed access reads zeros. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    const fields = this.#resolve(offset, data.length);
    if (!fields) return;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    fields.forEach((field, i) => put(view, i * 4, field.width, field.read()));
  }

  /** Writes the field(s) at `offset`; writes to read-only fields are ignored. */
  write(offset: number, data: Uint8Array): void {
    const fields = this.#resolve(offset, data.length);
    if (!fields) return;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    fields.forEach((field, i) => {
      if (field.write) field.write(get(view, i * 4, field.width));
      else this.#offence(`the driver wrote read-only common config at 0x${offset.toString(16)}`);
    });
  }

  /** The field an access targets: its exact width, or an 8-byte access to both halves. */
  #resolve(offset: number, length: number): Field[] | undefined {
    const field = this.#fields.get(offset);
    if (field && field.width === length) return [field];
    const high = this.#fields.get(offset + 4);
    const isAddress = offset >= C.QUEUE_DESC && (offset - C.QUEUE_DESC) % 8 === 0;
    if (length === 8 && isAddress && field && high) return [field, high];
    this.#offence(
      `the driver accessed common config 0x${offset.toString(16)} with ${length} bytes (ignored)`,
    );
    return undefined;
  }
}

function put(view: DataView, at: number, width: number, value: number): void {
  if (width === 1) view.setUint8(at, value & 0xff);
  else if (width === 2) view.setUint16(at, value & 0xffff, true);
  else view.setUint32(at, value >>> 0, true);
}

function get(view: DataView, at: number, width: number): number {
  if (width === 1) return view.getUint8(at);
  if (width === 2) return view.getUint16(at, true);
  return view.getUint32(at, true);
}
