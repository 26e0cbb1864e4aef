/**
 * qcow2 reference counts: the refcount table, refcount blocks (any refcount_order 0..6)
 * and cluster allocation. Every change is written through at once, and always before the
 * metadata that makes use of it (refcounts first), so a killed process leaves at worst
 * leaked clusters, never a cluster in use with a refcount of 0.
 *
 * @module
 */

import { ImageError } from "./errors.ts";
import { HEADER_REFCOUNT_TABLE_AT, readU64, writeU64 } from "./format.ts";
import type { HostFile } from "./host_file.ts";

/** Where the refcount table lives. */
export interface RefcountLayout {
  clusterBits: number;
  refcountOrder: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
}

/** The refcounts of one image, cached in memory and written through. */
export class Refcounts {
  readonly #file: HostFile;
  readonly #path: string;
  readonly #clusterSize: number;
  readonly #order: number;
  readonly #bits: number;
  readonly #max: number;
  /** Refcount entries per refcount block. */
  readonly #perBlock: number;
  #table: number[];
  #tableOffset: number;
  #tableClusters: number;
  readonly #blocks = new Map<number, Uint8Array>();
  /** The first cluster index past everything allocated: where appends go. */
  #end: number;
  /** No cluster below this index is free. */
  #freeHint = 0;

  private constructor(file: HostFile, layout: RefcountLayout, table: number[]) {
    this.#file = file;
    this.#path = file.path;
    this.#clusterSize = 2 ** layout.clusterBits;
    this.#order = layout.refcountOrder;
    this.#bits = 2 ** layout.refcountOrder;
    this.#max = this.#bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.#bits - 1;
    this.#perBlock = this.#clusterSize * 8 / this.#bits;
    this.#table = table;
    this.#tableOffset = layout.refcountTableOffset;
    this.#tableClusters = layout.refcountTableClusters;
    this.#end = Math.ceil(file.size / this.#clusterSize);
  }

  /** Reads and validates the refcount table. */
  static load(file: HostFile, layout: RefcountLayout): Refcounts {
    const clusterSize = 2 ** layout.clusterBits;
    const bytes = file.readBytes(
      layout.refcountTableOffset,
      layout.refcountTableClusters * clusterSize,
    );
    const view = new DataView(bytes.buffer);
    const table: number[] = [];
    for (let i = 0; i < bytes.length / 8; i++) {
      const offset = readU64(view, i * 8, file.path, `refcount table entry ${i}`);
      if (offset !== 0 && (offset % clusterSize !== 0 || offset + clusterSize > file.size)) {
        throw new ImageError(
          `Image ${file.path} is malformed: refcount table entry ${i} points to 0x${
            offset.toString(16)
          }, ${offset % clusterSize !== 0 ? "not cluster aligned" : "beyond the end of the file"}`,
        );
      }
      if (offset !== 0 && offset < clusterSize) {
        throw new ImageError(
          `Image ${file.path} is malformed: refcount block ${i} overlaps the header`,
        );
      }
      table.push(offset);
    }
    return new Refcounts(file, layout, table);
  }

  get clusterSize(): number {
    return this.#clusterSize;
  }

  /** The first cluster index past all allocations. */
  get endCluster(): number {
    return this.#end;
  }

  get tableOffset(): number {
    return this.#tableOffset;
  }

  get tableClusters(): number {
    return this.#tableClusters;
  }

  /** Host offsets of the refcount blocks (0 for none), by table index. */
  get blockOffsets(): readonly number[] {
    return this.#table;
  }

  /** Refcount entries per refcount block. */
  get perBlock(): number {
    return this.#perBlock;
  }

  /** The refcount of host cluster `cluster` (0 where no refcount block covers it). */
  get(cluster: number): number {
    const index = Math.floor(cluster / this.#perBlock);
    const block = this.#block(index);
    return block === undefined ? 0 : this.#read(block, cluster - index * this.#perBlock);
  }

  /**
   * Allocates `count` contiguous clusters with refcount 1 (written through) and returns
   * the host offset of the first. Free clusters are reused; otherwise the file grows.
   */
  allocate(count: number): number {
    let start = this.#findFree(count);
    if (start < 0) start = this.#reserveAtEnd(count);
    this.change(start, count, 1);
    this.#file.grow((start + count) * this.#clusterSize);
    return start * this.#clusterSize;
  }

  /**
   * Adds `delta` to the refcounts of `count` clusters from `cluster` and writes them.
   * Throws `ImageError` if a refcount would drop below 0 or overflow. Returns the number of
   * clusters whose refcount dropped to 0.
   */
  change(cluster: number, count: number, delta: number): number {
    let freed = 0;
    let at = cluster;
    const end = cluster + count;
    while (at < end) {
      const index = Math.floor(at / this.#perBlock);
      const stop = Math.min(end, (index + 1) * this.#perBlock);
      let block = this.#block(index);
      if (block === undefined) {
        if (delta < 0) throw this.#underflow(at);
        block = this.#newBlock(index);
      }
      const first = at - index * this.#perBlock;
      for (let i = first; i < stop - index * this.#perBlock; i++) {
        const value = this.#read(block, i) + delta;
        if (value < 0) throw this.#underflow(index * this.#perBlock + i);
        if (value > this.#max) {
          throw new ImageError(
            `Image ${this.#path}: the refcount of cluster ${
              index * this.#perBlock + i
            } would exceed its maximum ${this.#max}`,
          );
        }
        this.#write(block, i, value);
        if (value === 0) freed++;
      }
      this.#flushEntries(index, block, first, stop - index * this.#perBlock);
      if (delta < 0) this.#freeHint = Math.min(this.#freeHint, at);
      at = stop;
    }
    return freed;
  }

  #underflow(cluster: number): ImageError {
    return new ImageError(
      `Image ${this.#path} is corrupt: cluster ${cluster} is released but its refcount is already 0; run a check`,
    );
  }

  #block(index: number): Uint8Array | undefined {
    const cached = this.#blocks.get(index);
    if (cached !== undefined) return cached;
    const offset = index < this.#table.length ? this.#table[index] : 0;
    if (offset === 0) return undefined;
    const block = this.#file.readBytes(offset, this.#clusterSize);
    this.#blocks.set(index, block);
    return block;
  }

  #read(block: Uint8Array, i: number): number {
    switch (this.#order) {
      case 4:
        return (block[i * 2] << 8) | block[i * 2 + 1];
      case 3:
        return block[i];
      case 5:
        return ((block[i * 4] << 24) >>> 0) + (block[i * 4 + 1] << 16) +
          (block[i * 4 + 2] << 8) + block[i * 4 + 3];
      case 6: {
        const view = new DataView(block.buffer, block.byteOffset);
        return view.getUint32(i * 8) * 0x1_0000_0000 + view.getUint32(i * 8 + 4);
      }
      default: {
        const bit = i * this.#bits;
        return (block[bit >> 3] >> (bit & 7)) & this.#max;
      }
    }
  }

  #write(block: Uint8Array, i: number, value: number): void {
    if (this.#order >= 3) {
      const bytes = this.#bits / 8;
      let rest = value;
      for (let k = bytes - 1; k >= 0; k--) {
        block[i * bytes + k] = rest % 256;
        rest = Math.floor(rest / 256);
      }
      return;
    }
    const bit = i * this.#bits;
    const mask = this.#max << (bit & 7);
    block[bit >> 3] = (block[bit >> 3] & ~mask) | (value << (bit & 7));
  }

  /** Writes the bytes holding entries [first, end) of block `index`. */
  #flushEntries(index: number, block: Uint8Array, first: number, end: number): void {
    const from = Math.floor(first * this.#bits / 8);
    const to = Math.ceil(end * this.#bits / 8);
    this.#file.write(this.#table[index] + from, block.subarray(from, to));
  }

  /** The first run of `count` free clusters below the end, or -1. */
  #findFree(count: number): number {
    let run = 0;
    for (let cluster = this.#freeHint; cluster < this.#end; cluster++) {
      if (cluster === 0 || this.get(cluster) !== 0) {
        if (run === 0) this.#freeHint = cluster + 1;
        run = 0;
        continue;
      }
      if (++run === count) return cluster - count + 1;
    }
    return -1;
  }

  /** Reserves `count` clusters at the end (skipping any that refcounts say are in use). */
  #reserveAtEnd(count: number): number {
    for (;;) {
      let clear = true;
      for (let i = 0; i < count; i++) {
        if (this.get(this.#end + i) !== 0) {
          this.#end += i + 1;
          clear = false;
          break;
        }
      }
      if (clear) break;
    }
    const start = this.#end;
    this.#end += count;
    return start;
  }

  /** Creates refcount block `index` at the end of the file and hooks it into the table. */
  #newBlock(index: number): Uint8Array {
    this.#ensureTableCovers(index);
    const existing = this.#block(index);
    if (existing !== undefined) return existing;
    const cluster = this.#reserveAtEnd(1);
    const block = new Uint8Array(this.#clusterSize);
    const selfCovered = Math.floor(cluster / this.#perBlock) === index;
    if (selfCovered) this.#write(block, cluster - index * this.#perBlock, 1);
    this.#file.write(cluster * this.#clusterSize, block);
    // The block's own refcount is recorded before the table points to it.
    if (!selfCovered) this.change(cluster, 1, 1);
    this.#table[index] = cluster * this.#clusterSize;
    const entry = new Uint8Array(8);
    writeU64(new DataView(entry.buffer), 0, cluster * this.#clusterSize);
    this.#file.write(this.#tableOffset + index * 8, entry);
    this.#blocks.set(index, block);
    return block;
  }

  /**
   * Grows the refcount table (a new, larger copy at the end of the file, with refcount
   * blocks for its own clusters) until it has an entry `index`. The header is switched
   * to the new table only once it is complete and durable; the old one is then released.
   */
  #ensureTableCovers(index: number): void {
    if (index < this.#table.length) return;
    const perCluster = this.#clusterSize / 8;
    const clusters = Math.max(this.#tableClusters * 2, Math.ceil((index + 2) / perCluster) + 1);
    const entries = clusters * perCluster;
    const start = this.#reserveAtEnd(clusters);
    const table = [...this.#table, ...new Array(entries - this.#table.length).fill(0)];
    // Clusters needing a refcount of 1: the new table's, and those of new refcount blocks.
    const pending = new Map<number, { cluster: number; block: Uint8Array }>();
    const counted: number[] = [];
    for (let c = start; c < start + clusters; c++) counted.push(c);
    for (let k = 0; k < counted.length; k++) {
      const range = Math.floor(counted[k] / this.#perBlock);
      if (this.#block(range) !== undefined || pending.has(range)) continue;
      if (range >= entries) {
        throw new ImageError(`Image ${this.#path}: cannot grow the refcount table far enough`);
      }
      const cluster = this.#reserveAtEnd(1);
      pending.set(range, { cluster, block: new Uint8Array(this.#clusterSize) });
      counted.push(cluster);
    }
    for (const cluster of counted) {
      const range = Math.floor(cluster / this.#perBlock);
      const created = pending.get(range);
      if (created === undefined) continue;
      const i = cluster - range * this.#perBlock;
      this.#write(created.block, i, this.#read(created.block, i) + 1);
    }
    for (const [range, { cluster, block }] of pending) {
      this.#file.write(cluster * this.#clusterSize, block);
      table[range] = cluster * this.#clusterSize;
    }
    for (const cluster of counted) {
      if (!pending.has(Math.floor(cluster / this.#perBlock))) this.change(cluster, 1, 1);
    }
    const bytes = new Uint8Array(clusters * this.#clusterSize);
    const view = new DataView(bytes.buffer);
    table.forEach((offset, i) => writeU64(view, i * 8, offset));
    this.#file.write(start * this.#clusterSize, bytes);
    this.#file.sync();
    const header = new Uint8Array(12);
    const headerView = new DataView(header.buffer);
    writeU64(headerView, 0, start * this.#clusterSize);
    headerView.setUint32(8, clusters);
    this.#file.write(HEADER_REFCOUNT_TABLE_AT, header);
    this.#file.sync();
    const oldOffset = this.#tableOffset;
    const oldClusters = this.#tableClusters;
    this.#table = table;
    for (const [range, { block }] of pending) this.#blocks.set(range, block);
    this.#tableOffset = start * this.#clusterSize;
    this.#tableClusters = clusters;
    this.change(oldOffset / this.#clusterSize, oldClusters, -1);
  }
}
