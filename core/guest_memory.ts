/**
 * Guest physical memory: a set of host byte ranges, each mapped at a guest physical
 * address. Every access is bounds-checked; devices and loaders never see host pointers.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";

/** A guest physical address. Guest RAM stays below 2^52, so a number holds it exactly. */
export type GuestAddress = number;

/** One contiguous range of guest RAM backed by host memory. */
export interface GuestMemoryRegion {
  /** Guest physical address of the first byte. */
  readonly start: GuestAddress;
  /** The host bytes (an mmap'd view in the VMM, a plain array in tests). */
  readonly bytes: Uint8Array;
}

/** Told of every write the VMM makes into guest RAM while set (dirty tracking, core/dirty_log.ts). */
export interface WriteTracker {
  mark(address: GuestAddress, length: number): void;
}

/** Thrown when an access falls outside guest RAM or straddles two regions. */
export class GuestMemoryError extends DenovisorError {
  constructor(readonly address: GuestAddress, readonly length: number) {
    super(
      "invalid",
      `Guest memory access of ${length} bytes at 0x${address.toString(16)} is outside guest RAM`,
    );
  }
}

/** Bounds-checked access to guest physical memory. */
export class GuestMemory {
  readonly #regions: GuestMemoryRegion[];
  readonly #views: DataView[];
  #tracker: WriteTracker | null = null;

  constructor(regions: GuestMemoryRegion[]) {
    this.#regions = [...regions].sort((a, b) => a.start - b.start);
    for (let i = 1; i < this.#regions.length; i++) {
      const prev = this.#regions[i - 1];
      if (prev.start + prev.bytes.length > this.#regions[i].start) {
        throw new RangeError(
          `Guest memory regions overlap at 0x${this.#regions[i].start.toString(16)}`,
        );
      }
    }
    this.#views = this.#regions.map((r) =>
      new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength)
    );
  }

  /** Guest memory of `size` bytes at address 0 backed by a plain array (for tests and tools). */
  static ofSize(size: number): GuestMemory {
    return new GuestMemory([{ start: 0, bytes: new Uint8Array(size) }]);
  }

  /** The regions, sorted by address. */
  get regions(): readonly GuestMemoryRegion[] {
    return this.#regions;
  }

  /**
   * Starts (or with null stops) telling `tracker` of every write: writes, fills and every
   * `slice()`, since a view handed out may be written (virtio buffers filled by preadv).
   */
  trackWrites(tracker: WriteTracker | null): void {
    this.#tracker = tracker;
  }

  /** Total bytes of guest RAM. */
  get size(): number {
    return this.#regions.reduce((sum, r) => sum + r.bytes.length, 0);
  }

  /** Whether `[address, address + length)` lies inside one region. */
  contains(address: GuestAddress, length: number): boolean {
    return this.#find(address, length) >= 0;
  }

  /**
   * A live view of `length` guest bytes at `address` (writes go to the guest). The range
   * must lie inside one region: guest-controlled ranges that straddle regions are refused.
   */
  slice(address: GuestAddress, length: number): Uint8Array {
    const view = this.#view(address, length);
    this.#tracker?.mark(address, length);
    return view;
  }

  /**
   * The index in `regions` of the region holding all of `[address, address + length)`,
   * or -1 (outside RAM, straddling two regions, or not a safe integer range).
   */
  regionOf(address: GuestAddress, length: number): number {
    return this.#find(address, length);
  }

  /** A DataView over all of region `index` of `regions` (made once, no allocation). */
  regionView(index: number): DataView {
    return this.#views[index];
  }

  /**
   * Tells the write tracker (if any) of `length` bytes at `address` that the VMM is about
   * to write by other means than this class (a readv straight into guest buffers).
   */
  noteWrite(address: GuestAddress, length: number): void {
    this.#tracker?.mark(address, length);
  }

  /** Copies `data` into guest memory at `address`. */
  write(address: GuestAddress, data: Uint8Array): void {
    this.slice(address, data.length).set(data);
  }

  /** Copies `length` bytes out of guest memory. */
  read(address: GuestAddress, length: number): Uint8Array {
    return this.#view(address, length).slice();
  }

  /** Fills `length` bytes at `address` with `value`. */
  fill(address: GuestAddress, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  readU8(address: GuestAddress): number {
    const [view, off] = this.#at(address, 1);
    return view.getUint8(off);
  }
  readU16(address: GuestAddress): number {
    const [view, off] = this.#at(address, 2);
    return view.getUint16(off, true);
  }
  readU32(address: GuestAddress): number {
    const [view, off] = this.#at(address, 4);
    return view.getUint32(off, true);
  }
  readU64(address: GuestAddress): bigint {
    const [view, off] = this.#at(address, 8);
    return view.getBigUint64(off, true);
  }
  writeU8(address: GuestAddress, value: number): void {
    const [view, off] = this.#at(address, 1);
    this.#tracker?.mark(address, 1);
    view.setUint8(off, value);
  }
  writeU16(address: GuestAddress, value: number): void {
    const [view, off] = this.#at(address, 2);
    this.#tracker?.mark(address, 2);
    view.setUint16(off, value, true);
  }
  writeU32(address: GuestAddress, value: number): void {
    const [view, off] = this.#at(address, 4);
    this.#tracker?.mark(address, 4);
    view.setUint32(off, value, true);
  }
  writeU64(address: GuestAddress, value: bigint | number): void {
    const [view, off] = this.#at(address, 8);
    this.#tracker?.mark(address, 8);
    view.setBigUint64(off, BigInt(value), true);
  }

  #view(address: GuestAddress, length: number): Uint8Array {
    const i = this.#index(address, length);
    const region = this.#regions[i];
    const offset = address - region.start;
    return region.bytes.subarray(offset, offset + length);
  }

  #at(address: GuestAddress, length: number): [DataView, number] {
    const i = this.#index(address, length);
    return [this.#views[i], address - this.#regions[i].start];
  }

  #index(address: GuestAddress, length: number): number {
    const i = this.#find(address, length);
    if (i < 0) throw new GuestMemoryError(address, length);
    return i;
  }

  #find(address: GuestAddress, length: number): number {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length)) return -1;
    if (address < 0 || length < 0) return -1;
    for (let i = 0; i < this.#regions.length; i++) {
      const r = this.#regions[i];
      if (address >= r.start && address + length <= r.start + r.bytes.length) return i;
    }
    return -1;
  }
}
