/**
 * The split virtqueue's memory layout (virtio 1.2, section 2.7): offsets, sizes, flags and
 * the event-index arithmetic shared by the device side (queue.ts) and the driver-side
 * test harness (testing/driver_harness.ts). All fields are little-endian.
 *
 * @module
 */

/** Largest queue size the split ring allows (the highest power of two in 16 bits). */
export const MAX_QUEUE_SIZE = 32768;

/** Bytes of one descriptor: le64 addr, le32 len, le16 flags, le16 next. */
export const DESC_SIZE = 16;
/** Offset of `len` inside a descriptor. */
export const DESC_LEN = 8;
/** Offset of `flags` inside a descriptor. */
export const DESC_FLAGS = 12;
/** Offset of `next` inside a descriptor. */
export const DESC_NEXT = 14;

/** The buffer continues in the descriptor named by `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of descriptors (VIRTIO_F_RING_INDIRECT_DESC). */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** Available ring flag: the driver wants no used-buffer interrupts (without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Used ring flag: the device wants no available-buffer notifications (without EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Offset of `flags` in both rings. */
export const RING_FLAGS = 0;
/** Offset of `idx` in both rings. */
export const RING_IDX = 2;
/** Offset of the first ring entry in both rings. */
export const RING_ENTRIES = 4;
/** Bytes of one available ring entry (le16 head). */
export const AVAIL_ENTRY_SIZE = 2;
/** Bytes of one used ring element (le32 id, le32 len). */
export const USED_ENTRY_SIZE = 8;

/** Required alignment of each part, in bytes (spec 2.7, table "Virtqueue Part"). */
export const RING_ALIGNMENT = { descTable: 16, availRing: 2, usedRing: 4 } as const;

/** Bytes of the descriptor table of a queue of `size` entries. */
export function descTableBytes(size: number): number {
  return DESC_SIZE * size;
}

/** Bytes of the available ring, including the trailing `used_event` field. */
export function availRingBytes(size: number): number {
  return 6 + AVAIL_ENTRY_SIZE * size;
}

/** Bytes of the used ring, including the trailing `avail_event` field. */
export function usedRingBytes(size: number): number {
  return 6 + USED_ENTRY_SIZE * size;
}

/** Offset of `used_event` in the available ring (right after the ring entries). */
export function usedEventOffset(size: number): number {
  return RING_ENTRIES + AVAIL_ENTRY_SIZE * size;
}

/** Offset of `avail_event` in the used ring (right after the ring elements). */
export function availEventOffset(size: number): number {
  return RING_ENTRIES + USED_ENTRY_SIZE * size;
}

/**
 * Whether moving a 16-bit ring index from `oldIdx` to `newIdx` crossed `eventIdx`, that is
 * whether the entry at `eventIdx` was among those just added: the other side asked to be
 * told when that entry is written. All arithmetic is modulo 2^16 so it survives wrap-around.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** Whether `size` is a valid split queue size: a power of two in 1..32768. */
export function isValidQueueSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= MAX_QUEUE_SIZE &&
    (size & (size - 1)) === 0;
}
