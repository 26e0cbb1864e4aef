/**
 * The guest-to-host cluster map of a qcow2 image: the L1 table and the L2 tables (a small
 * LRU cache of them), validated when read, written through when changed. A changed L2
 * table is always written before the L1 entry that points to it.
 *
 * @module
 */

import { ImageError } from "./errors.ts";
import {
  entryOffset,
  HEADER_L1_SIZE_AT,
  HEADER_SIZE_AT,
  HI_COMPRESSED,
  HI_COPIED,
  HI_OFFSET_MASK,
  LO_OFFSET_MASK,
  LO_ZERO,
  MAX_L1_BYTES,
  writeU64,
} from "./format.ts";
import type { HostFile } from "./host_file.ts";
import type { Refcounts } from "./refcounts.ts";

/** What a guest cluster is, as `ClusterMap.classify` reports it. */
export const ClusterKind = {
  /** Not allocated here: the backing file's data, or zeroes. */
  Unallocated: 0,
  /** Reads as zeroes (a zero cluster, possibly with a preallocated host cluster). */
  Zero: 1,
  /** Data in a host cluster. */
  Data: 2,
  /** Deflate-compressed data. */
  Compressed: 3,
} as const;
/** One of `ClusterKind`'s values. */
export type ClusterKind = (typeof ClusterKind)[keyof typeof ClusterKind];

/** The L2 tables cached, at most this many bytes of them (and at least 16 tables). */
const L2_CACHE_BYTES = 32 * 1024 * 1024;

/** The L1/L2 tables of one image. */
export class ClusterMap {
  readonly #file: HostFile;
  readonly #path: string;
  readonly #clusterSize: number;
  readonly #l2Entries: number;
  readonly #version: number;
  #l1Offset: number;
  /** L1 entries: the L2 table's host offset (0 = none) and whether it has COPIED set. */
  #l1: Float64Array;
  #l1Copied: Uint8Array;
  readonly #cache = new Map<number, DataView>();
  readonly #cacheLimit: number;
  #lastOffset = -1;
  #last?: DataView;
  readonly #entry = new Uint8Array(8);
  readonly #entryView = new DataView(this.#entry.buffer);

  /** The last classified entry: its halves and, for Data and Zero, the host offset. */
  hi = 0;
  lo = 0;
  host = 0;

  constructor(
    file: HostFile,
    options: { clusterBits: number; version: number; l1Offset: number; l1Size: number },
  ) {
    this.#file = file;
    this.#path = file.path;
    this.#clusterSize = 2 ** options.clusterBits;
    this.#l2Entries = this.#clusterSize / 8;
    this.#version = options.version;
    this.#l1Offset = options.l1Offset;
    this.#cacheLimit = Math.max(16, L2_CACHE_BYTES / this.#clusterSize);
    const bytes = file.readBytes(options.l1Offset, options.l1Size * 8);
    const view = new DataView(bytes.buffer);
    this.#l1 = new Float64Array(options.l1Size);
    this.#l1Copied = new Uint8Array(options.l1Size);
    for (let i = 0; i < options.l1Size; i++) {
      const hi = view.getUint32(i * 8);
      const lo = view.getUint32(i * 8 + 4);
      const offset = entryOffset(hi, lo);
      if (offset === 0) continue;
      if (offset % this.#clusterSize !== 0 || offset + this.#clusterSize > file.size) {
        throw new ImageError(
          `Image ${this.#path} is malformed: L1 entry ${i} points to an L2 table at 0x${
            offset.toString(16)
          }, ${
            offset % this.#clusterSize !== 0 ? "not cluster aligned" : "beyond the end of the file"
          }`,
        );
      }
      this.#l1[i] = offset;
      this.#l1Copied[i] = (hi & HI_COPIED) !== 0 ? 1 : 0;
    }
  }

  get l1Size(): number {
    return this.#l1.length;
  }

  get l1Offset(): number {
    return this.#l1Offset;
  }

  /** The L2 table host offset of L1 entry `index` (0 = none). */
  l2Offset(index: number): number {
    return this.#l1[index];
  }

  /**
   * Classifies guest cluster `cluster` and leaves its entry in `hi`, `lo` and `host`.
   * Loads (and validates) its L2 table on a cache miss.
   */
  classify(cluster: number): ClusterKind {
    const index = Math.floor(cluster / this.#l2Entries);
    const tableOffset = this.#l1[index];
    if (tableOffset === 0) {
      this.hi = this.lo = this.host = 0;
      return ClusterKind.Unallocated;
    }
    const table = tableOffset === this.#lastOffset ? this.#last! : this.#table(tableOffset);
    const at = (cluster - index * this.#l2Entries) * 8;
    const hi = table.getUint32(at);
    const lo = table.getUint32(at + 4);
    this.hi = hi;
    this.lo = lo;
    if ((hi & HI_COMPRESSED) !== 0) return ClusterKind.Compressed;
    this.host = (hi & HI_OFFSET_MASK) * 0x1_0000_0000 + ((lo & LO_OFFSET_MASK) >>> 0);
    if (this.#version >= 3 && (lo & LO_ZERO) !== 0) return ClusterKind.Zero;
    return this.host === 0 ? ClusterKind.Unallocated : ClusterKind.Data;
  }

  /** Whether the last classified entry has COPIED set (refcount 1: writable in place). */
  get copied(): boolean {
    return (this.hi & HI_COPIED) !== 0;
  }

  /**
   * Sets guest cluster `cluster`'s L2 entry to `host` with `flags` (COPIED, zero) and
   * writes it through; the L2 table is first made private to the active L1 table.
   */
  setEntry(
    cluster: number,
    host: number,
    options: { copied?: boolean; zero?: boolean },
    refcounts: Refcounts,
  ): void {
    const index = Math.floor(cluster / this.#l2Entries);
    const { table, offset } = this.#writableTable(index, refcounts);
    const at = (cluster - index * this.#l2Entries) * 8;
    const hi = (options.copied ? HI_COPIED : 0) | Math.floor(host / 0x1_0000_0000);
    const lo = ((host >>> 0) & LO_OFFSET_MASK) | (options.zero ? LO_ZERO : 0);
    const oldHi = table.getUint32(at);
    const oldLo = table.getUint32(at + 4);
    table.setUint32(at, hi >>> 0);
    table.setUint32(at + 4, lo >>> 0);
    this.#entryView.setUint32(0, hi >>> 0);
    this.#entryView.setUint32(4, lo >>> 0);
    try {
      this.#file.write(offset + at, this.#entry);
    } catch (error) {
      // The cached table must keep matching the file (e.g. after ENOSPC).
      table.setUint32(at, oldHi);
      table.setUint32(at + 4, oldLo);
      throw error;
    }
  }

  /**
   * Points L1 entry `index` at a fresh L2 table with every entry of `entries`
   * (host offsets with COPIED set) filled in: for preallocation.
   */
  fillTable(index: number, first: number, hosts: number[], refcounts: Refcounts): void {
    const { table, offset } = this.#writableTable(index, refcounts);
    for (let i = 0; i < hosts.length; i++) {
      table.setUint32((first + i) * 8, (HI_COPIED | Math.floor(hosts[i] / 0x1_0000_0000)) >>> 0);
      table.setUint32((first + i) * 8 + 4, hosts[i] >>> 0);
    }
    this.#file.write(offset, new Uint8Array(table.buffer));
  }

  /**
   * Grows the L1 table to `entries` for a virtual size of `size`: a new copy at the end of
   * the file, then one header write switching size, L1 size and L1 offset, then the old
   * table's clusters are released.
   */
  grow(entries: number, size: number, refcounts: Refcounts): void {
    if (entries * 8 > MAX_L1_BYTES) {
      throw new ImageError(`Cannot grow image ${this.#path} to ${size} bytes: absurdly large`);
    }
    const oldOffset = this.#l1Offset;
    const oldClusters = Math.ceil(this.#l1.length * 8 / this.#clusterSize);
    let offset = oldOffset;
    if (entries > this.#l1.length) {
      const clusters = Math.ceil(entries * 8 / this.#clusterSize);
      offset = refcounts.allocate(clusters);
      const bytes = new Uint8Array(clusters * this.#clusterSize);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < this.#l1.length; i++) {
        if (this.#l1[i] === 0) continue;
        writeU64(view, i * 8, this.#l1[i]);
        if (this.#l1Copied[i]) view.setUint32(i * 8, view.getUint32(i * 8) | HI_COPIED);
      }
      this.#file.write(offset, bytes);
      this.#file.sync();
      const l1 = new Float64Array(entries);
      l1.set(this.#l1);
      const copied = new Uint8Array(entries);
      copied.set(this.#l1Copied);
      this.#l1 = l1;
      this.#l1Copied = copied;
    }
    const header = new Uint8Array(HEADER_L1_SIZE_AT + 12 - HEADER_SIZE_AT);
    const view = new DataView(header.buffer);
    writeU64(view, 0, size);
    view.setUint32(HEADER_L1_SIZE_AT - HEADER_SIZE_AT, this.#l1.length);
    writeU64(view, HEADER_L1_SIZE_AT - HEADER_SIZE_AT + 4, offset);
    this.#file.write(HEADER_SIZE_AT, header);
    this.#file.sync();
    if (offset !== oldOffset && oldClusters > 0) {
      refcounts.change(oldOffset / this.#clusterSize, oldClusters, -1);
    }
    this.#l1Offset = offset;
  }

  /** The L2 table at `offset`, through the cache; validated when first read. */
  #table(offset: number): DataView {
    let table = this.#cache.get(offset);
    if (table === undefined) {
      table = this.#load(offset);
      if (this.#cache.size >= this.#cacheLimit) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
    } else {
      this.#cache.delete(offset); // most recently used goes last
    }
    this.#cache.set(offset, table);
    this.#lastOffset = offset;
    this.#last = table;
    return table;
  }

  #load(offset: number): DataView {
    const bytes = this.#file.readBytes(offset, this.#clusterSize);
    const view = new DataView(bytes.buffer);
    const fileSize = this.#file.size;
    for (let i = 0; i < this.#l2Entries; i++) {
      const hi = view.getUint32(i * 8);
      if ((hi & HI_COMPRESSED) !== 0) continue; // checked when decompressed
      const host = entryOffset(hi, view.getUint32(i * 8 + 4));
      if (host === 0) continue;
      if (host % this.#clusterSize !== 0 || host >= fileSize) {
        throw new ImageError(
          `Image ${this.#path} is malformed: the L2 table at 0x${
            offset.toString(16)
          } maps a cluster to host offset 0x${host.toString(16)}, ${
            host % this.#clusterSize !== 0 ? "not cluster aligned" : "beyond the end of the file"
          }`,
        );
      }
    }
    return view;
  }

  /** The L2 table for L1 entry `index`, copied or created first unless it is private. */
  #writableTable(index: number, refcounts: Refcounts): { table: DataView; offset: number } {
    const old = this.#l1[index];
    if (old !== 0 && this.#l1Copied[index]) return { table: this.#table(old), offset: old };
    const offset = refcounts.allocate(1);
    const bytes = old === 0
      ? new Uint8Array(this.#clusterSize)
      : new Uint8Array(this.#table(old).buffer).slice();
    this.#file.write(offset, bytes);
    const table = new DataView(bytes.buffer);
    this.#setL1(index, offset);
    this.#cache.delete(old);
    this.#lastOffset = -1;
    this.#cache.set(offset, table);
    // The old table stays referenced by a snapshot's L1 table; this L1 drops its reference.
    if (old !== 0) refcounts.change(old / this.#clusterSize, 1, -1);
    return { table, offset };
  }

  #setL1(index: number, offset: number): void {
    this.#entryView.setUint32(0, (HI_COPIED | Math.floor(offset / 0x1_0000_0000)) >>> 0);
    this.#entryView.setUint32(4, offset >>> 0);
    this.#file.write(this.#l1Offset + index * 8, this.#entry);
    this.#l1[index] = offset;
    this.#l1Copied[index] = 1;
  }
}
