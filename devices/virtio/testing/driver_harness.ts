/**
 * The driver side of a split virtqueue, as a guest driver would run it, for tests and
 * host-side benchmarks: it lays the queue out in guest memory, adds chains of buffers
 * (optionally through an indirect table), publishes them, tells whether the device wants
 * a notification, and reads the used ring. It also writes raw descriptors and ring entries
 * so tests can build hostile queues.
 *
 * ```ts
 * const memory = GuestMemory.ofSize(1 << 20);
 * const driver = new SplitQueueDriver(memory, { base: 0x1000, size: 8 });
 * const queue = new SplitQueue(memory, driver.config, { features: driver.features });
 * const head = driver.submit([{ address: 0x8000, length: 16 }, { address: 0x9000, length: 64, writable: true }]);
 * const chain = queue.pop(); // chain.head === head
 * queue.push(head, 4);
 * driver.takeUsed(); // [{ head, written: 4 }]
 * ```
 *
 * @module
 */

import type { GuestAddress, GuestMemory } from "../../../core/guest_memory.ts";
import type { SplitQueueConfig } from "../queue.ts";
import {
  AVAIL_ENTRY_SIZE,
  availEventOffset,
  availRingBytes,
  DESC_FLAGS,
  DESC_LEN,
  DESC_NEXT,
  DESC_SIZE,
  descTableBytes,
  isValidQueueSize,
  RING_ENTRIES,
  RING_FLAGS,
  RING_IDX,
  USED_ENTRY_SIZE,
  usedEventOffset,
  usedRingBytes,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  vringNeedEvent,
} from "../split_ring.ts";
import { VIRTIO_F } from "../virtio_device.ts";

/** One buffer of a chain the driver adds. */
export interface DriverBuffer {
  readonly address: GuestAddress;
  readonly length: number;
  /** Device-writable (default: device-readable). */
  readonly writable?: boolean;
}

/** One raw descriptor, for building hostile tables. */
export interface RawDescriptor {
  readonly address: number | bigint;
  readonly length: number;
  readonly flags: number;
  readonly next?: number;
}

/** A used ring element as the driver reads it. */
export interface UsedElement {
  readonly head: number;
  readonly written: number;
}

/** Options of `SplitQueueDriver`. */
export interface SplitQueueDriverOptions {
  /** Start of the guest memory the driver owns (16-byte aligned, see `bytesNeeded`). */
  readonly base: GuestAddress;
  /** Queue size (a power of two). */
  readonly size: number;
  /** Use VIRTIO_F_RING_EVENT_IDX (used_event / avail_event) for notification suppression. */
  readonly eventIdx?: boolean;
  /** Room for an indirect table of this many descriptors per head (0: no indirect chains). */
  readonly indirectEntries?: number;
  /**
   * Initial free-running ring index (both rings), as if the queue had already run that
   * many requests: pair it with `SplitQueue.restore` to test 16-bit wrap-around quickly.
   */
  readonly startIndex?: number;
}

/** Options of `SplitQueueDriver.add`. */
export interface AddOptions {
  /** Put the buffers in an indirect table referenced by a single ring descriptor. */
  readonly indirect?: boolean;
}

/** A guest driver's view of one split virtqueue. */
export class SplitQueueDriver {
  /** The layout to hand to the device side (`new SplitQueue(memory, driver.config, ...)`). */
  readonly config: SplitQueueConfig;
  /** The ring features this driver uses (EVENT_IDX and/or INDIRECT_DESC). */
  readonly features: bigint;
  readonly #memory: GuestMemory;
  readonly #size: number;
  readonly #eventIdx: boolean;
  readonly #indirectEntries: number;
  readonly #indirectBase: GuestAddress;
  readonly #desc: DataView;
  readonly #avail: DataView;
  readonly #used: DataView;
  /** Stack of free descriptor indices. */
  readonly #free: number[] = [];
  /** Descriptor indices of each outstanding chain, by head. */
  readonly #chains: Array<number[] | undefined>;
  #availIdx: number;
  #added = 0;
  #lastUsed: number;

  /** Bytes of guest memory a driver of this `size` and `indirectEntries` occupies. */
  static bytesNeeded(size: number, indirectEntries = 0): number {
    return SplitQueueDriver.#layout(0, size, indirectEntries).end;
  }

  static #layout(base: number, size: number, indirectEntries: number) {
    const descTable = base;
    const availRing = descTable + descTableBytes(size);
    const usedRing = alignUp(availRing + availRingBytes(size), 4);
    const indirect = alignUp(usedRing + usedRingBytes(size), 16);
    return {
      descTable,
      availRing,
      usedRing,
      indirect,
      end: indirect + size * indirectEntries * 16,
    };
  }

  constructor(memory: GuestMemory, options: SplitQueueDriverOptions) {
    const { base, size } = options;
    if (!isValidQueueSize(size)) throw new RangeError(`Queue size ${size} is not a power of two`);
    if (base % 16 !== 0) {
      throw new RangeError(`Queue base 0x${base.toString(16)} is not 16-byte aligned`);
    }
    this.#memory = memory;
    this.#size = size;
    this.#eventIdx = options.eventIdx ?? false;
    this.#indirectEntries = options.indirectEntries ?? 0;
    const layout = SplitQueueDriver.#layout(base, size, this.#indirectEntries);
    memory.fill(base, layout.end - base); // the driver zeroes the rings (used.flags must be 0)
    this.config = {
      size,
      descTable: layout.descTable,
      availRing: layout.availRing,
      usedRing: layout.usedRing,
    };
    this.features = (this.#eventIdx ? VIRTIO_F.RING_EVENT_IDX : 0n) |
      (this.#indirectEntries > 0 ? VIRTIO_F.RING_INDIRECT_DESC : 0n);
    this.#indirectBase = layout.indirect;
    this.#desc = viewOf(memory, layout.descTable, descTableBytes(size));
    this.#avail = viewOf(memory, layout.availRing, availRingBytes(size));
    this.#used = viewOf(memory, layout.usedRing, usedRingBytes(size));
    for (let i = size - 1; i >= 0; i--) this.#free.push(i);
    this.#chains = new Array(size).fill(undefined);
    this.#availIdx = (options.startIndex ?? 0) & 0xffff;
    this.#lastUsed = this.#availIdx;
    this.#avail.setUint16(RING_IDX, this.#availIdx, true);
    this.#used.setUint16(RING_IDX, this.#availIdx, true);
  }

  /** Descriptors not used by any outstanding chain. */
  get freeDescriptors(): number {
    return this.#free.length;
  }

  /** The driver's avail.idx, including chains added but not yet published. */
  get availIdx(): number {
    return (this.#availIdx + this.#added) & 0xffff;
  }

  /** used.idx as the device last published it. */
  get usedIdx(): number {
    return this.#used.getUint16(RING_IDX, true);
  }

  /** avail_event as the device last published it (EVENT_IDX). */
  get availEvent(): number {
    return this.#used.getUint16(availEventOffset(this.#size), true);
  }

  /**
   * Adds a chain (not visible to the device until `publish()`); returns its head. Throws
   * when there are not enough free descriptors or the indirect area is too small.
   */
  add(buffers: readonly DriverBuffer[], options: AddOptions = {}): number {
    if (buffers.length === 0) throw new RangeError("A chain needs at least one buffer");
    let head: number;
    let indices: number[];
    if (options.indirect) {
      if (buffers.length > this.#indirectEntries) {
        throw new RangeError(
          `${buffers.length} buffers do not fit indirect tables of ${this.#indirectEntries} entries`,
        );
      }
      indices = this.#take(1);
      head = indices[0];
      const table = this.#indirectBase + head * this.#indirectEntries * DESC_SIZE;
      const view = viewOf(this.#memory, table, buffers.length * DESC_SIZE);
      buffers.forEach((b, i) => writeDesc(view, i, b, i + 1 < buffers.length ? i + 1 : undefined));
      this.writeDescriptor(head, {
        address: table,
        length: buffers.length * DESC_SIZE,
        flags: VIRTQ_DESC_F_INDIRECT,
      });
    } else {
      indices = this.#take(buffers.length);
      head = indices[0];
      buffers.forEach((b, i) => writeDesc(this.#desc, indices[i], b, indices[i + 1]));
    }
    this.#chains[head] = indices;
    this.makeAvailable(head);
    return head;
  }

  /**
   * Makes the added chains visible (bumps avail.idx) and returns whether the device wants
   * a notification for them (avail_event with EVENT_IDX, else used.flags NO_NOTIFY).
   */
  publish(): boolean {
    const oldIdx = this.#availIdx;
    const newIdx = (oldIdx + this.#added) & 0xffff;
    this.#added = 0;
    this.#availIdx = newIdx;
    this.#avail.setUint16(RING_IDX, newIdx, true);
    if (this.#eventIdx) return vringNeedEvent(this.availEvent, newIdx, oldIdx);
    return newIdx !== oldIdx &&
      (this.#used.getUint16(RING_FLAGS, true) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** `add` then `publish`; returns the head. */
  submit(buffers: readonly DriverBuffer[], options: AddOptions = {}): number {
    const head = this.add(buffers, options);
    this.publish();
    return head;
  }

  /** Used elements published since the last call; frees their descriptors. */
  takeUsed(): UsedElement[] {
    const used: UsedElement[] = [];
    const usedIdx = this.usedIdx;
    while (this.#lastUsed !== usedIdx) {
      const at = RING_ENTRIES + USED_ENTRY_SIZE * (this.#lastUsed & (this.#size - 1));
      const head = this.#used.getUint32(at, true);
      const written = this.#used.getUint32(at + 4, true);
      const indices = this.#chains[head];
      if (!indices) throw new Error(`The device returned chain ${head}, which is not outstanding`);
      this.#chains[head] = undefined;
      for (let i = indices.length - 1; i >= 0; i--) this.#free.push(indices[i]);
      used.push({ head, written });
      this.#lastUsed = (this.#lastUsed + 1) & 0xffff;
    }
    return used;
  }

  /** Asks for an interrupt only once used.idx passes `index` (EVENT_IDX's used_event). */
  setUsedEvent(index: number): void {
    this.#avail.setUint16(usedEventOffset(this.#size), index & 0xffff, true);
  }

  /** Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT (without EVENT_IDX). */
  setNoInterrupt(on: boolean): void {
    this.#avail.setUint16(RING_FLAGS, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0, true);
  }

  /** Writes descriptor `index` of the ring's table verbatim (hostile tests). */
  writeDescriptor(index: number, descriptor: RawDescriptor): void {
    writeRaw(this.#desc, index, descriptor);
  }

  /** Writes an indirect table of raw descriptors at `address` (hostile tests). */
  writeTable(address: GuestAddress, descriptors: readonly RawDescriptor[]): void {
    const view = viewOf(this.#memory, address, descriptors.length * DESC_SIZE);
    descriptors.forEach((d, i) => writeRaw(view, i, d));
  }

  /**
   * Puts `head` (any 16-bit value) in the next available ring entry, unpublished. A head
   * that `add` did not allocate counts as outstanding without descriptors of its own (raw
   * descriptors bypass the free list: keep them clear of `add`'s chains).
   */
  makeAvailable(head: number): void {
    if (head < this.#size) this.#chains[head] ??= [];
    const slot = (this.#availIdx + this.#added) & (this.#size - 1);
    this.#avail.setUint16(RING_ENTRIES + AVAIL_ENTRY_SIZE * slot, head, true);
    this.#added++;
  }

  /** Writes avail.idx verbatim (hostile tests: an index that jumps ahead). */
  setAvailIdx(index: number): void {
    this.#availIdx = index & 0xffff;
    this.#added = 0;
    this.#avail.setUint16(RING_IDX, this.#availIdx, true);
  }

  #take(count: number): number[] {
    if (count > this.#free.length) {
      throw new RangeError(`${count} descriptors needed but ${this.#free.length} are free`);
    }
    const taken: number[] = [];
    for (let i = 0; i < count; i++) taken.push(this.#free.pop()!);
    return taken;
  }
}

function writeDesc(view: DataView, index: number, buffer: DriverBuffer, next?: number): void {
  writeRaw(view, index, {
    address: buffer.address,
    length: buffer.length,
    flags: (buffer.writable ? VIRTQ_DESC_F_WRITE : 0) |
      (next === undefined ? 0 : VIRTQ_DESC_F_NEXT),
    next: next ?? 0,
  });
}

function writeRaw(view: DataView, index: number, d: RawDescriptor): void {
  const offset = index * DESC_SIZE;
  if (typeof d.address === "number" && Number.isSafeInteger(d.address) && d.address >= 0) {
    // Two 32-bit halves: no bigint on the benchmark's hot path.
    view.setUint32(offset, d.address % 0x1_0000_0000, true);
    view.setUint32(offset + 4, Math.floor(d.address / 0x1_0000_0000), true);
  } else {
    view.setBigUint64(offset, BigInt.asUintN(64, BigInt(d.address)), true);
  }
  view.setUint32(offset + DESC_LEN, d.length >>> 0, true);
  view.setUint16(offset + DESC_FLAGS, d.flags & 0xffff, true);
  view.setUint16(offset + DESC_NEXT, (d.next ?? 0) & 0xffff, true);
}

function viewOf(memory: GuestMemory, address: GuestAddress, length: number): DataView {
  const bytes = memory.slice(address, length);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
