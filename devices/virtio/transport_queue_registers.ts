/**
 * Per-queue registers of the virtio transports and the checks that turn them into a
 * queue layout (virtio 1.2, section 2.7), plus the types transports and the VMM share
 * about queues.
 *
 * @module
 */

import type { GuestAddress, GuestMemory } from "../../core/guest_memory.ts";
import type { VirtQueue } from "./queue_types.ts";

/** Where the driver placed one split virtqueue, as the queue factory receives it. */
export interface QueueConfig {
  readonly size: number;
  readonly descTable: GuestAddress;
  readonly availRing: GuestAddress;
  readonly usedRing: GuestAddress;
}

/** Builds the device side of one queue; throws `VirtQueueError` for a bad layout. */
export type CreateQueue = (
  memory: GuestMemory,
  config: QueueConfig,
  features: bigint,
) => VirtQueue;

/** An address the VMM should watch with an ioeventfd to catch one queue's notifications. */
export interface NotifyRegion {
  readonly address: GuestAddress;
  /** Access size the guest uses (the ioeventfd only matches that size). */
  readonly length: number;
  /** Value the guest writes; undefined to match any value. */
  readonly datamatch?: number;
  /** The queue to pass to `notify()` when it fires. */
  readonly queue: number;
}

/** The three guest addresses of a queue, as the registers name them. */
export type QueueAddressField = "descTable" | "availRing" | "usedRing";

/** MSI-X "no vector", re-exported by transport_state.ts as VIRTIO_MSI_NO_VECTOR. */
export const NO_VECTOR = 0xffff;

/** One queue's registers as the driver wrote them. */
export interface QueueRegisters {
  size: number;
  ready: boolean;
  msixVector: number;
  // Halves as written: a 64-bit address may not fit a number, so it is checked on use.
  address: Record<QueueAddressField, [number, number]>;
}

// Spec 2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned.
const ADDRESS_ALIGNMENT: Record<QueueAddressField, number> = {
  descTable: 16,
  availRing: 2,
  usedRing: 4,
};

/** Queue registers as a reset leaves them: the maximum size, disabled, no vector. */
export function newQueueRegisters(maxSize: number): QueueRegisters {
  return {
    size: maxSize,
    ready: false,
    msixVector: NO_VECTOR,
    address: { descTable: [0, 0], availRing: [0, 0], usedRing: [0, 0] },
  };
}

/**
 * The layout the driver configured, or why it cannot be used: the size must be a power
 * of two up to `maxSize` and each address aligned and exactly representable.
 */
export function queueConfigOf(registers: QueueRegisters, maxSize: number): QueueConfig | string {
  const { size } = registers;
  if (size === 0 || size > maxSize || (size & (size - 1)) !== 0) {
    return `size ${size} is not a power of two up to ${maxSize}`;
  }
  const addresses = {} as Record<QueueAddressField, GuestAddress>;
  for (const field of Object.keys(ADDRESS_ALIGNMENT) as QueueAddressField[]) {
    const [low, high] = registers.address[field];
    const address = high * 0x1_0000_0000 + low;
    if (!Number.isSafeInteger(address) || address % ADDRESS_ALIGNMENT[field] !== 0) {
      return `${field} address 0x${address.toString(16)} is invalid`;
    }
    addresses[field] = address;
  }
  return { size, ...addresses };
}
