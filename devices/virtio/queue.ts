/**
 * The device side of a split virtqueue (virtio 1.2, section 2.7) over guest memory. The
 * driver owns the descriptor table and the available ring, the device owns the used ring;
 * everything the driver wrote is untrusted and checked (see split_chain.ts for chains).
 *
 * Memory ordering. The driver runs on a vCPU thread while this code runs on the VMM's
 * main thread, both on x86-64, whose memory model (TSO) keeps stores in program order and
 * loads in program order; the only reordering the CPU does is a later load passing an
 * earlier store (the store buffer). What remains is keeping the JIT from reordering our
 * accesses, and the one store-then-load that needs a full fence. Both are handled with
 * `Atomics` on the ring index fields: the JS memory model forbids moving plain accesses
 * across a sequentially consistent atomic, and V8 emits a seq-cst `Atomics.store` on
 * x86-64 as `xchg`, which is a full barrier. (`Atomics` works on the non-shared buffers
 * guest memory comes in; only `Atomics.wait` needs a SharedArrayBuffer.)
 *
 * So: `pop()` loads avail.idx atomically before reading ring entries and descriptors
 * (the driver wrote those before bumping idx); `push()` writes the
 * used element with plain stores and then stores used.idx atomically (the driver sees the
 * element before the index); `needsInterrupt()` loads used_event / flags after that
 * `xchg`, so it cannot read a stale value from before the used.idx store; and publishing
 * avail_event is an `xchg` followed by a re-read of avail.idx, so a chain added while the
 * device was going idle is not missed.
 *
 * @module
 */

import type { GuestAddress, GuestMemory } from "../../core/guest_memory.ts";
import {
  type ChainBuffers,
  type DescriptorChain,
  type VirtQueue,
  VirtQueueError,
} from "./queue_types.ts";
import { type ChainLimits, MalformedChainError, readChain, walkChain } from "./split_chain.ts";
import {
  availEventOffset,
  availRingBytes,
  descTableBytes,
  isValidQueueSize,
  MAX_QUEUE_SIZE,
  RING_ALIGNMENT,
  RING_ENTRIES,
  RING_FLAGS,
  RING_IDX,
  USED_ENTRY_SIZE,
  usedEventOffset,
  usedRingBytes,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  vringNeedEvent,
} from "./split_ring.ts";
import { VIRTIO_F } from "./virtio_device.ts";
import { parseQueueState, type SplitQueueState } from "./queue_state.ts";

export { MalformedChainError } from "./split_chain.ts";
export type { SplitQueueState } from "./queue_state.ts";

/** Where the driver placed the queue (same shape as the transports' `QueueConfig`). */
export interface SplitQueueConfig {
  /** Number of descriptors: a power of two, 1..32768. */
  readonly size: number;
  /** Descriptor area: the descriptor table (16-byte aligned). */
  readonly descTable: GuestAddress;
  /** Driver area: the available ring (2-byte aligned). */
  readonly availRing: GuestAddress;
  /** Device area: the used ring (4-byte aligned). */
  readonly usedRing: GuestAddress;
}

/** Options of `SplitQueue`. */
export interface SplitQueueOptions {
  /** Negotiated features; only RING_INDIRECT_DESC and RING_EVENT_IDX matter here. */
  readonly features?: bigint;
  /** The device's maximum queue size (default 32768). */
  readonly maxSize?: number;
  /** Most bytes one chain may describe (default 2^32, the spec's limit). */
  readonly maxChainBytes?: number;
}

/** Default total length cap of one chain: drivers must not exceed 2^32 bytes (spec 2.7.5.1). */
export const DEFAULT_MAX_CHAIN_BYTES = 2 ** 32;

/** A split virtqueue served by a device. */
export class SplitQueue implements VirtQueue {
  /** Number of descriptors. */
  readonly size: number;
  /** Whether VIRTIO_F_RING_EVENT_IDX is in use. */
  readonly eventIdx: boolean;
  /** Whether VIRTIO_F_RING_INDIRECT_DESC is in use. */
  readonly indirect: boolean;
  readonly #memory: GuestMemory;
  readonly #maxChainBytes: number;
  /** Handed to every `readChain` (made once: `pop()` runs once per request). */
  readonly #limits: ChainLimits;
  readonly #desc: DataView;
  readonly #avail: RingView;
  readonly #used: RingView;
  /** Free-running (mod 2^16) index of the next available entry to read. */
  #nextAvail = 0;
  /** Free-running (mod 2^16) used.idx: where the next used element goes. */
  #nextUsed = 0;
  /** Pushes since the last `needsInterrupt()`, capped at 65536 (a full wrap). */
  #unsignalled = 0;
  /** Per head: writable bytes of the chain the device holds, or -1 when not in flight. */
  readonly #inFlight: Float64Array;

  constructor(memory: GuestMemory, config: SplitQueueConfig, options: SplitQueueOptions = {}) {
    const maxSize = options.maxSize ?? MAX_QUEUE_SIZE;
    if (!isValidQueueSize(maxSize)) {
      throw new RangeError(`Maximum queue size ${maxSize} is not a power of two up to 32768`);
    }
    const { size } = config;
    if (!isValidQueueSize(size) || size > maxSize) {
      throw new VirtQueueError(
        `Queue size ${size} is not a power of two between 1 and ${maxSize}: program a valid size`,
      );
    }
    const features = options.features ?? 0n;
    this.size = size;
    this.eventIdx = (features & VIRTIO_F.RING_EVENT_IDX) !== 0n;
    this.indirect = (features & VIRTIO_F.RING_INDIRECT_DESC) !== 0n;
    this.#memory = memory;
    this.#maxChainBytes = options.maxChainBytes ?? DEFAULT_MAX_CHAIN_BYTES;
    this.#limits = { indirect: this.indirect, maxChainBytes: this.#maxChainBytes };
    const desc = ringSlice(
      memory,
      "Descriptor table",
      config.descTable,
      descTableBytes(size),
      RING_ALIGNMENT.descTable,
    );
    this.#desc = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
    this.#avail = new RingView(
      ringSlice(
        memory,
        "Available ring",
        config.availRing,
        availRingBytes(size),
        RING_ALIGNMENT.availRing,
      ),
    );
    this.#used = new RingView(
      ringSlice(memory, "Used ring", config.usedRing, usedRingBytes(size), RING_ALIGNMENT.usedRing),
    );
    this.#inFlight = new Float64Array(size).fill(-1);
  }

  /**
   * A queue continuing from a saved `queueState()`. The state is untrusted (it comes from
   * a file): it is checked and a bad one throws `VirtQueueError`. Restore guest memory first.
   */
  static restore(
    memory: GuestMemory,
    config: SplitQueueConfig,
    state: unknown,
    options: SplitQueueOptions = {},
  ): SplitQueue {
    const queue = new SplitQueue(memory, config, options);
    queue.restoreState(state);
    return queue;
  }

  /** Replaces the device-side indices and in-flight chains with a checked saved state. */
  restoreState(state: unknown): void {
    const parsed = parseQueueState(state, this.size, this.#maxChainBytes);
    this.#nextAvail = parsed.nextAvail;
    this.#nextUsed = parsed.nextUsed;
    this.#unsignalled = parsed.usedSinceInterruptCheck;
    this.#inFlight.fill(-1);
    for (const { head, writableLength } of parsed.inFlight) this.#inFlight[head] = writableLength;
  }

  /**
   * The state a snapshot keeps (see `VirtQueue.saveState`): `queueState()` with the chains
   * in flight handed back by rewinding nextAvail over them. That is only right when they
   * are exactly the last chains popped, which the avail ring still says: the driver cannot
   * have reused those slots, since reusing one needs a descriptor of a chain not yet used.
   */
  saveState(): SplitQueueState {
    const state = this.queueState();
    const held = new Set(state.inFlight.map((chain) => chain.head));
    const nextAvail = (this.#nextAvail - held.size) & 0xffff;
    for (let i = 0; i < held.size; i++) {
      const slot = (nextAvail + i) & (this.size - 1);
      const head = this.#avail.view.getUint16(RING_ENTRIES + 2 * slot, true);
      if (!held.delete(head)) {
        throw new VirtQueueError(
          `Cannot save the queue: the device holds chain ${[...held][0]}, which is not among ` +
            `the last ones it popped; complete its requests before saving`,
        );
      }
    }
    return { ...state, nextAvail, inFlight: [] };
  }

  /** The device-side indices and in-flight chains as plain JSON, for snapshots. */
  queueState(): SplitQueueState {
    const inFlight: Array<{ head: number; writableLength: number }> = [];
    this.#inFlight.forEach((writableLength, head) => {
      if (writableLength >= 0) inFlight.push({ head, writableLength });
    });
    return {
      nextAvail: this.#nextAvail,
      nextUsed: this.#nextUsed,
      usedSinceInterruptCheck: this.#unsignalled,
      inFlight,
    };
  }

  /**
   * The next available chain, or undefined when there is none. Throws
   * `MalformedChainError` (a `VirtQueueError`) for a bad chain, which is consumed; throws a
   * plain `VirtQueueError` when avail.idx is impossible (the queue is unusable: fail the
   * device).
   */
  pop(): DescriptorChain | undefined {
    const head = this.#nextHead();
    if (head < 0) return undefined;
    try {
      const chain = readChain(this.#memory, this.#desc, this.size, head, this.#limits);
      this.#inFlight[head] = chain.writableLength;
      return chain;
    } catch (error) {
      // The device owes the driver this head back (with 0 bytes written).
      if (error instanceof MalformedChainError) this.#inFlight[head] = 0;
      throw error;
    }
  }

  /**
   * `pop()` into `out`, allocating nothing: true when a chain was taken. The write
   * tracker is told of the chain's writable buffers (as `pop()`'s views tell it).
   */
  popInto(out: ChainBuffers): boolean {
    const head = this.#nextHead();
    if (head < 0) return false;
    try {
      walkChain(this.#memory, this.#desc, this.size, head, this.#limits, out);
    } catch (error) {
      if (error instanceof MalformedChainError) this.#inFlight[head] = 0;
      throw error;
    }
    this.#inFlight[head] = out.writableLength;
    for (let i = out.readableCount; i < out.count; i++) {
      this.#memory.noteWrite(out.addresses[i], out.lengths[i]);
    }
    return true;
  }

  /** Takes the next available head (checked), or -1 when there is none. */
  #nextHead(): number {
    let pending = this.#pendingCount();
    if (pending === 0) {
      if (!this.eventIdx) return -1;
      // Going idle: ask to be notified when the driver writes the entry at nextAvail. The
      // store is a full barrier; re-reading idx afterwards catches a chain the driver added
      // after our first read but before it could see the new avail_event.
      this.#used.storeU16(availEventOffset(this.size), this.#nextAvail);
      pending = this.#pendingCount();
      if (pending === 0) return -1;
    }
    const slot = this.#nextAvail & (this.size - 1);
    const head = this.#avail.view.getUint16(RING_ENTRIES + 2 * slot, true);
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    if (head >= this.size) {
      throw new MalformedChainError(
        `Available ring entry ${slot} names descriptor ${head} but the queue has ${this.size}`,
        undefined,
      );
    }
    if (this.#inFlight[head] >= 0) {
      throw new MalformedChainError(
        `Descriptor chain ${head} was made available again before the device returned it`,
        undefined,
      );
    }
    return head;
  }

  /**
   * Returns chain `head` to the driver with `written` bytes written. Throws
   * `VirtQueueError` when `head` is not a chain the device holds or `written` is more than
   * its writable bytes (a device bug).
   */
  push(head: number, written: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this.size) {
      throw new VirtQueueError(`Cannot return chain ${head}: the queue has ${this.size} entries`);
    }
    const writable = this.#inFlight[head];
    if (writable < 0) {
      throw new VirtQueueError(`Cannot return chain ${head}: the device does not hold it`);
    }
    if (!Number.isInteger(written) || written < 0 || written > writable) {
      throw new VirtQueueError(
        `Cannot return chain ${head} with ${written} bytes written: it has ${writable} writable`,
      );
    }
    const element = RING_ENTRIES + USED_ENTRY_SIZE * (this.#nextUsed & (this.size - 1));
    this.#used.view.setUint32(element, head, true);
    this.#used.view.setUint32(element + 4, written, true);
    this.#inFlight[head] = -1;
    this.#nextUsed = (this.#nextUsed + 1) & 0xffff;
    // Publishes the element written above (see the module doc on ordering).
    this.#used.storeU16(RING_IDX, this.#nextUsed);
    this.#unsignalled = Math.min(this.#unsignalled + 1, 0x10000);
  }

  /** Whether the driver wants an interrupt for the chains pushed since the last call. */
  needsInterrupt(): boolean {
    const pushed = this.#unsignalled;
    if (pushed === 0) return false;
    this.#unsignalled = 0;
    if (pushed >= 0x10000) return true; // a full wrap: the 16-bit window is ambiguous
    if (this.eventIdx) {
      const usedEvent = this.#avail.loadU16(usedEventOffset(this.size));
      return vringNeedEvent(usedEvent, this.#nextUsed, (this.#nextUsed - pushed) & 0xffff);
    }
    return (this.#avail.loadU16(RING_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** Chains the driver has made available and the device has not popped yet. */
  availableCount(): number {
    const pending = this.#pendingCount();
    return pending > this.size ? 0 : pending;
  }

  #pendingCount(): number {
    const availIdx = this.#avail.loadU16(RING_IDX);
    const pending = (availIdx - this.#nextAvail) & 0xffff;
    if (pending > this.size) {
      throw new VirtQueueError(
        `Available index ${availIdx} is ${pending} entries past the device's ${this.#nextAvail}, ` +
          `more than the queue size ${this.size}: the driver corrupted the ring`,
      );
    }
    return pending;
  }
}

/** Builds a `SplitQueue` with the transports' `CreateQueue` signature. */
export function createSplitQueue(
  memory: GuestMemory,
  config: SplitQueueConfig,
  features: bigint,
): SplitQueue {
  return new SplitQueue(memory, config, { features });
}

/** The live bytes of one ring part, refused when misaligned or not inside one RAM region. */
function ringSlice(
  memory: GuestMemory,
  what: string,
  address: GuestAddress,
  length: number,
  alignment: number,
): Uint8Array {
  if (!Number.isSafeInteger(address) || address < 0) {
    throw new VirtQueueError(`${what} address ${address} is not a valid guest address`);
  }
  const hex = `0x${address.toString(16)}`;
  if (address % alignment !== 0) {
    throw new VirtQueueError(`${what} address ${hex} is not ${alignment}-byte aligned`);
  }
  if (!memory.contains(address, length)) {
    throw new VirtQueueError(
      `${what} of ${length} bytes at ${hex} is not inside one guest RAM region: ` +
        `place it in RAM`,
    );
  }
  return memory.slice(address, length);
}

/**
 * A ring in guest memory: plain accesses through a DataView, and the index fields through
 * `Atomics` when the host bytes are 2-byte aligned (they are page-aligned mmaps in the VMM).
 */
class RingView {
  readonly view: DataView;
  readonly #u16: Uint16Array | undefined;

  constructor(bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Little-endian host (x86-64), so a Uint16Array reads the little-endian fields right.
    this.#u16 = bytes.byteOffset % 2 === 0
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1)
      : undefined;
  }

  /** An ordered load of the 16-bit field at the even `offset`. */
  loadU16(offset: number): number {
    return this.#u16 ? Atomics.load(this.#u16, offset >> 1) : this.view.getUint16(offset, true);
  }

  /** An ordered store (a full barrier on x86-64) of the 16-bit field at the even `offset`. */
  storeU16(offset: number, value: number): void {
    if (this.#u16) Atomics.store(this.#u16, offset >> 1, value);
    else this.view.setUint16(offset, value, true);
  }
}
