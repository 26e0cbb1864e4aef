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
