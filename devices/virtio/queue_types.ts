/**
 * The virtqueue as devices see it: validated descriptor chains whose buffers are live
 * views into guest memory, and the used ring. The split-ring implementation lives in
 * queue.ts; devices depend only on these types.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { GuestAddress } from "../../core/guest_memory.ts";
import type { SplitQueueState } from "./queue_state.ts";

/** One buffer of a descriptor chain: a bounds-checked, live view of guest memory. */
export interface GuestBuffer {
  readonly address: GuestAddress;
  /** Exactly `length` bytes of guest memory (writes go to the guest). */
  readonly bytes: Uint8Array;
}

/** A descriptor chain taken from the available ring, already validated. */
export interface DescriptorChain {
  /** Head descriptor index: hand it back to `VirtQueue.push`. */
  readonly head: number;
  /** Device-readable buffers, in order (they all come before the writable ones). */
  readonly readable: readonly GuestBuffer[];
  /** Device-writable buffers, in order. */
  readonly writable: readonly GuestBuffer[];
  /** Total bytes of `readable`. */
  readonly readableLength: number;
  /** Total bytes of `writable`. */
  readonly writableLength: number;
}

/**
 * A validated descriptor chain as flat, reusable arrays: the same facts as a
 * `DescriptorChain` without an object or view per buffer, for devices whose per-request
 * work is a few system calls (virtio-net: one readv or writev per frame). Buffer `i` is
 * `lengths[i]` bytes at `offsets[i]` of `sources[i]` (a guest RAM region's host bytes, or a
 * test's own array) and at guest address `addresses[i]`; the first `readableCount` are
 * device-readable, the rest device-writable. Filled by `VirtQueue.popInto`; valid until
 * the next fill.
 */
export class ChainBuffers {
  /** Head descriptor index: hand it back to `VirtQueue.push`. */
  head = 0;
  /** Buffers in the chain. */
  count = 0;
  /** How many of the first buffers are device-readable. */
  readableCount = 0;
  /** Total bytes of the readable buffers. */
  readableLength = 0;
  /** Total bytes of the writable buffers. */
  writableLength = 0;
  sources: Uint8Array[] = [];
  offsets: Float64Array = new Float64Array(8);
  lengths: Float64Array = new Float64Array(8);
  addresses: Float64Array = new Float64Array(8);

  /** Empties the list for chain `head`. */
  reset(head: number): void {
    this.head = head;
    this.count = 0;
    this.readableCount = 0;
    this.readableLength = 0;
    this.writableLength = 0;
  }

  /**
   * Appends a buffer the caller has checked; readable buffers must come first (the
   * caller refuses a readable one after a writable one).
   */
  add(source: Uint8Array, offset: number, length: number, address: number, writable: boolean) {
    const i = this.count;
    if (i === this.offsets.length) this.#grow();
    this.sources[i] = source;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.addresses[i] = address;
    this.count = i + 1;
    if (writable) {
      this.writableLength += length;
    } else {
      this.readableCount++;
      this.readableLength += length;
    }
  }

  /** The view of buffer `i` (allocates: for the slow path and tests). */
  bytes(i: number): Uint8Array {
    const offset = this.offsets[i];
    return this.sources[i].subarray(offset, offset + this.lengths[i]);
  }

  /** Copies the chain's facts out (for storing it past the next fill). */
  copyTo(other: ChainBuffers): void {
    other.reset(this.head);
    for (let i = 0; i < this.count; i++) {
      other.add(
        this.sources[i],
        this.offsets[i],
        this.lengths[i],
        this.addresses[i],
        i >= this.readableCount,
      );
    }
  }

  #grow(): void {
    const size = this.offsets.length * 2;
    const grown = (old: Float64Array) => {
      const next = new Float64Array(size);
      next.set(old);
      return next;
    };
    this.offsets = grown(this.offsets);
    this.lengths = grown(this.lengths);
    this.addresses = grown(this.addresses);
  }
}

/** A malformed queue or chain from the driver: fail the request or the device, never the VMM. */
export class VirtQueueError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The device side of one virtqueue. */
export interface VirtQueue {
  /** Queue size (number of descriptors). */
  readonly size: number;
  /**
   * The next available chain, or undefined when the driver has published nothing new.
   * Throws `VirtQueueError` for a malformed chain (loop, out of RAM, bad lengths or
   * directions, bad indirect table); the chain is consumed either way.
   */
  pop(): DescriptorChain | undefined;
  /**
   * `pop()` into `out` (reused, nothing allocated per chain): true when a chain was taken,
   * false when there is none. Throws as `pop()` does; `out` is then undefined.
   */
  popInto(out: ChainBuffers): boolean;
  /** Returns chain `head` to the driver with `written` bytes written into its buffers. */
  push(head: number, written: number): void;
  /**
   * Whether the driver wants an interrupt for what was pushed since the last call
   * (VIRTQ_AVAIL_F_NO_INTERRUPT, or the used_event index with VIRTIO_F_RING_EVENT_IDX).
   */
  needsInterrupt(): boolean;
  /**
   * The device-side state for a snapshot, taken while the machine is paused. Chains the
   * device still holds (throttled, or waiting for a packet) are handed back: the saved
   * next-available index is rewound over them, so the restored device pops and serves them
   * again. Throws `VirtQueueError` when the held chains are not the last ones popped (a
   * device that completes out of order must finish its requests before saving).
   */
  saveState(): SplitQueueState;
  /**
   * Continues from a saved state (untrusted: checked, a bad one throws `VirtQueueError`
   * and changes nothing). Restore guest memory first.
   */
  restoreState(state: unknown): void;
}
