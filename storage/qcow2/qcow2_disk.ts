/**
 * A qcow2 image as a Disk: guest reads and writes through the L1/L2 map, copy-on-write of
 * partial clusters from the backing image, zero clusters, discard, compressed clusters
 * (read), growth. Metadata is written through in a crash-safe order: refcounts before the
 * L2 entry that uses a cluster, data before its L2 entry, L2 tables before their L1
 * entry, and an entry is unlinked before the cluster it pointed to is released.
 *
 * @module
 */

import { checkDiskRange, DiskError, type WriteZeroesOptions } from "../disk.ts";
import type { BlockExtent, Image } from "../image.ts";
import { ClusterKind, ClusterMap } from "./cluster_map.ts";
import { ImageError } from "./errors.ts";
import {
  compressedRange,
  HEADER_AUTOCLEAR_AT,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  parseHeader,
  type Qcow2Header,
} from "./format.ts";
import { HostFile } from "./host_file.ts";
import { Refcounts } from "./refcounts.ts";
import { CompressedClusters, copyOut, slice } from "./buffers.ts";

/** Opens the backing image of an overlay (always read-only). */
export type BackingOpener = (path: string, format: string | undefined) => Image;

/** Options of `Qcow2Disk.open`. */
export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Opens the backing file; when absent, a backing file is refused. */
  openBacking?: BackingOpener;
}

/** A qcow2 image file. */
export class Qcow2Disk implements Image {
  readonly format = "qcow2" as const;
  readonly path: string;
  readonly readOnly: boolean;
  readonly id: string;
  readonly header: Qcow2Header;
  readonly backing?: Image;
  readonly #file: HostFile;
  readonly #map: ClusterMap;
  readonly #refcounts?: Refcounts;
  readonly #clusterSize: number;
  #size: number;
  #zeroes?: Uint8Array;
  readonly #compressed: CompressedClusters;

  private constructor(
    file: HostFile,
    header: Qcow2Header,
    map: ClusterMap,
    refcounts: Refcounts | undefined,
    backing: Image | undefined,
  ) {
    this.path = file.path;
    this.readOnly = file.readOnly;
    this.id = file.id;
    this.header = header;
    this.#file = file;
    this.#map = map;
    this.#refcounts = refcounts;
    this.#clusterSize = 2 ** header.clusterBits;
    this.#size = header.size;
    this.backing = backing;
    this.#compressed = new CompressedClusters(file, header.clusterBits);
  }

  /** Opens, locks and validates the qcow2 image at `path`, and its backing chain. */
  static open(path: string, options: Qcow2OpenOptions = {}): Qcow2Disk {
    const readOnly = options.readOnly ?? false;
    const file = HostFile.open(path, readOnly);
    let backing: Image | undefined;
    try {
      const first = file.readBytes(0, Math.min(file.size, 2 * 1024 * 1024));
      const header = parseHeader(
        first.subarray(0, Math.min(first.length, 2 ** 21)),
        file.size,
        path,
      );
      if (!readOnly) refuseUnsafeWrites(header, path);
      const map = new ClusterMap(file, {
        clusterBits: header.clusterBits,
        version: header.version,
        l1Offset: header.l1TableOffset,
        l1Size: header.l1Size,
      });
      const refcounts = readOnly ? undefined : Refcounts.load(file, header);
      if (!readOnly && header.autoclear !== 0) {
        // Autoclear features (e.g. bitmaps) describe data this writer does not maintain.
        file.write(HEADER_AUTOCLEAR_AT, new Uint8Array(8));
        header.autoclear = 0;
      }
      if (header.backingFile !== undefined) {
        if (options.openBacking === undefined) {
          throw new ImageError(`Image ${path} has a backing file, which was not expected here`);
        }
        backing = options.openBacking(header.backingFile, header.backingFormat);
      }
      return new Qcow2Disk(file, header, map, refcounts, backing);
    } catch (error) {
      backing?.close();
      file.close();
      throw error;
    }
  }

  get size(): number {
    return this.#size;
  }

  get clusterSize(): number {
    return this.#clusterSize;
  }

  /** The refcounts (read-write opens only), for check and snapshots. */
  get refcounts(): Refcounts | undefined {
    return this.#refcounts;
  }

  /** The cluster map, for check and snapshots. */
  get clusterMap(): ClusterMap {
    return this.#map;
  }

  /** The host file, for check and snapshots. */
  get hostFile(): HostFile {
    return this.#file;
  }

  read(offset: number, buffers: readonly Uint8Array[]): void {
    this.#refuseIfClosed("read");
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    checkDiskRange(this.path, this.#size, offset, total, "read");
    let done = 0;
    while (done < total) {
      const length = this.#run(offset + done, total - done);
      const kind = this.#kind;
      const views = done === 0 && length === total ? buffers : slice(buffers, done, length);
      const at = offset + done;
      if (kind === ClusterKind.Data) {
        this.#file.readv(this.#runHost, views);
      } else if (kind === ClusterKind.Unallocated) {
        this.#readBacking(at, views, length);
      } else if (kind === ClusterKind.Zero) {
        for (const view of views) view.fill(0);
      } else {
        const data = this.#compressed.cluster(this.#map.hi, this.#map.lo);
        copyOut(data, at % this.#clusterSize, views);
      }
      done += length;
    }
  }

  write(offset: number, buffers: readonly Uint8Array[]): void {
    this.#refuseIfReadOnly("write");
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    checkDiskRange(this.path, this.#size, offset, total, "write");
    const cs = this.#clusterSize;
    let done = 0;
    while (done < total) {
      const at = offset + done;
      const cluster = Math.floor(at / cs);
      const inside = at - cluster * cs;
      let length = Math.min(cs - inside, total - done);
      const kind = this.#map.classify(cluster);
      if (kind === ClusterKind.Data && this.#map.copied) {
        const host = this.#map.host + inside;
        // Extend over following clusters that are private and contiguous on the host.
        while (done + length < total) {
          const next = this.#map.classify(cluster + Math.ceil((inside + length) / cs));
          if (next !== ClusterKind.Data || !this.#map.copied) break;
          if (this.#map.host !== host + length) break;
          length += Math.min(cs, total - done - length);
        }
        const views = done === 0 && length === total ? buffers : slice(buffers, done, length);
        this.#file.writev(host, views);
      } else {
        this.#allocatingWrite(cluster, inside, slice(buffers, done, length), length);
      }
      done += length;
    }
  }

  flush(): void {
    if (this.readOnly || this.#file.closed) return;
    this.#file.sync();
  }

  discard(offset: number, length: number): void {
    this.#refuseIfReadOnly("discard");
    checkDiskRange(this.path, this.#size, offset, length, "discard");
    this.#zeroRange(offset, length, true, true);
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): void {
    this.#refuseIfReadOnly("write zeroes to");
    checkDiskRange(this.path, this.#size, offset, length, "write zeroes to");
    this.#zeroRange(offset, length, options.unmap ?? false, false);
  }

  /** Grows the image to `newSize` bytes (the L1 table grows if needed); shrinking is refused. */
  resize(newSize: number): void {
    this.#refuseIfReadOnly("resize");
    if (!Number.isSafeInteger(newSize) || newSize < 0) {
      throw new DiskError(`Cannot resize disk ${this.path} to ${newSize}: not a size`);
    }
    if (newSize < this.#size) {
      throw new DiskError(
        `Cannot shrink qcow2 image ${this.path} from ${this.#size} to ${newSize} bytes; only growing is supported`,
      );
    }
    if (newSize === this.#size) return;
    const entries = Math.ceil(newSize / this.#clusterSize / (this.#clusterSize / 8));
    this.#map.grow(Math.max(entries, this.#map.l1Size), newSize, this.#refcounts!);
    this.#size = newSize;
    this.header.size = newSize;
  }

  blockStatus(offset: number, length: number): BlockExtent {
    checkDiskRange(this.path, this.#size, offset, length, "query");
    const run = this.#run(offset, Math.max(1, length));
    const extent = Math.min(run, length);
    switch (this.#kind) {
      case ClusterKind.Data:
      case ClusterKind.Compressed:
        return { offset, length: extent, allocated: true, zero: false, depth: 0 };
      case ClusterKind.Zero:
        return { offset, length: extent, allocated: true, zero: true, depth: 0 };
    }
    const backing = this.backing;
    if (backing === undefined || offset >= backing.size) {
      return { offset, length: extent, allocated: false, zero: true, depth: 0 };
    }
    const status = backing.blockStatus(offset, Math.min(extent, backing.size - offset));
    return { ...status, allocated: false, depth: status.depth + 1 };
  }

  /**
   * Preallocates every cluster of the image ("metadata": host clusters mapped, the file
   * sparse; "full": also fallocated), in runs of one L2 table each.
   */
  preallocate(mode: "metadata" | "full"): void {
    this.#refuseIfReadOnly("preallocate");
    const cs = this.#clusterSize;
    const perTable = cs / 8;
    const clusters = Math.ceil(this.#size / cs);
    for (let first = 0; first < clusters; first += perTable) {
      const count = Math.min(perTable, clusters - first);
      const start = this.#refcounts!.allocate(count);
      const hosts = Array.from({ length: count }, (_, i) => start + i * cs);
      this.#map.fillTable(first / perTable, 0, hosts, this.#refcounts!);
      if (mode === "full" && !this.#file.fallocate(0, start, count * cs)) {
        this.#file.writev(start, [new Uint8Array(count * cs)]);
      }
    }
  }

  close(): void {
    if (this.#file.closed) return;
    this.#file.close();
    this.backing?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // --- reads -------------------------------------------------------------------------

  #kind: ClusterKind = ClusterKind.Unallocated;
  #runHost = 0;

  /**
   * The length of the run of bytes from `at` (at most `max`) that one operation serves:
   * contiguous data clusters, or clusters that are all zero or all unallocated, or one
   * compressed cluster. Leaves the kind in `#kind` and the host offset in `#runHost`.
   */
  #run(at: number, max: number): number {
    const cs = this.#clusterSize;
    const cluster = Math.floor(at / cs);
    const inside = at - cluster * cs;
    const kind = this.#map.classify(cluster);
    this.#kind = kind;
    this.#runHost = this.#map.host + inside;
    let length = Math.min(cs - inside, max);
    if (kind === ClusterKind.Compressed) return length;
    const hi = this.#map.hi;
    const lo = this.#map.lo;
    const host = this.#runHost;
    for (let next = cluster + 1; length < max; next++) {
      const nextKind = this.#map.classify(next);
      if (nextKind !== kind) break;
      if (kind === ClusterKind.Data && this.#map.host !== host + length) break;
      length += Math.min(cs, max - length);
    }
    this.#map.hi = hi;
    this.#map.lo = lo;
    return length;
  }

  /** Reads unallocated bytes: from the backing image where it has them, else zeroes. */
  #readBacking(at: number, views: readonly Uint8Array[], length: number): void {
    const backing = this.backing;
    const inside = backing === undefined ? 0 : Math.max(0, Math.min(length, backing.size - at));
    if (inside === length) {
      backing!.read(at, views);
      return;
    }
    if (inside > 0) backing!.read(at, slice(views, 0, inside));
    for (const view of slice(views, inside, length - inside)) view.fill(0);
  }

  // --- writes ------------------------------------------------------------------------

  /**
   * Writes `length` bytes at `inside` of guest cluster `cluster` into a newly allocated
   * host cluster (or its own zeroed one), filling the rest from the old contents.
   */
  #allocatingWrite(cluster: number, inside: number, views: Uint8Array[], length: number): void {
    const cs = this.#clusterSize;
    const refcounts = this.#refcounts!;
    const kind = this.#map.classify(cluster);
    const oldHi = this.#map.hi;
    const oldLo = this.#map.lo;
    const oldHost = this.#map.host;
    const reuse = kind === ClusterKind.Zero && oldHost !== 0 && this.#map.copied;
    const sizeBefore = this.#file.size;
    const target = reuse ? oldHost : refcounts.allocate(1);
    const fresh = target >= sizeBefore;
    const oldIsZero = kind === ClusterKind.Zero ||
      (kind === ClusterKind.Unallocated && !this.#backingHasData(cluster));
    const pieces: Uint8Array[] = [];
    let start = target + inside;
    if (inside > 0 && !(fresh && oldIsZero)) {
      pieces.push(this.#oldContent(kind, cluster, oldHi, oldLo, oldHost, 0, inside));
      start = target;
    }
    pieces.push(...views);
    const tail = inside + length;
    if (tail < cs && !(fresh && oldIsZero)) {
      pieces.push(this.#oldContent(kind, cluster, oldHi, oldLo, oldHost, tail, cs));
    }
    this.#file.writev(start, pieces);
    this.#map.setEntry(cluster, target, { copied: true }, refcounts);
    if (!reuse) this.#release(kind, oldHi, oldLo, oldHost);
  }

  /** Bytes [from, to) of a guest cluster's contents before this write. */
  #oldContent(
    kind: ClusterKind,
    cluster: number,
    hi: number,
    lo: number,
    host: number,
    from: number,
    to: number,
  ): Uint8Array {
    const length = to - from;
    if (kind === ClusterKind.Zero) return this.#zeroBuffer().subarray(0, length);
    const bytes = new Uint8Array(length);
    if (kind === ClusterKind.Data) {
      this.#file.readv(host + from, [bytes]);
    } else if (kind === ClusterKind.Compressed) {
      bytes.set(this.#compressed.cluster(hi, lo).subarray(from, to));
    } else {
      this.#readBacking(cluster * this.#clusterSize + from, [bytes], length);
    }
    return bytes;
  }

  /** Whether the backing chain could hold data for guest cluster `cluster`. */
  #backingHasData(cluster: number): boolean {
    const backing = this.backing;
    if (backing === undefined) return false;
    return cluster * this.#clusterSize < backing.size;
  }

  /** Drops this image's reference to an entry's host clusters; punches freed data clusters. */
  #release(kind: ClusterKind, hi: number, lo: number, host: number): void {
    const cs = this.#clusterSize;
    const refcounts = this.#refcounts!;
    if (kind === ClusterKind.Compressed) {
      const { offset, end } = compressedRange(hi, lo, this.header.clusterBits);
      const first = Math.floor(offset / cs);
      refcounts.change(first, Math.floor((end - 1) / cs) - first + 1, -1);
    } else if (host !== 0 && (kind === ClusterKind.Data || kind === ClusterKind.Zero)) {
      if (refcounts.change(host / cs, 1, -1) > 0) this.#file.punchHole(host, cs);
    }
  }

  /** Discard or write-zeroes: whole clusters by L2 entry, partial ones by writing zeroes. */
  #zeroRange(offset: number, length: number, unmap: boolean, discard: boolean): void {
    const cs = this.#clusterSize;
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const cluster = Math.floor(at / cs);
      const inside = at - cluster * cs;
      const piece = Math.min(cs - inside, end - at);
      if (piece < cs) this.#zeroPartial(cluster, at, piece);
      else this.#zeroCluster(cluster, unmap, discard);
      at += piece;
    }
  }

  #zeroPartial(cluster: number, at: number, length: number): void {
    const kind = this.#map.classify(cluster);
    if (kind === ClusterKind.Zero) return;
    if (kind === ClusterKind.Unallocated && !this.#backingHasData(cluster)) return;
    this.write(at, [this.#zeroBuffer().subarray(0, length)]);
  }

  #zeroCluster(cluster: number, unmap: boolean, discard: boolean): void {
    const kind = this.#map.classify(cluster);
    const { hi, lo, host } = this.#map;
    const copied = this.#map.copied;
    const backed = this.#backingHasData(cluster);
    if (kind === ClusterKind.Unallocated && !backed) return;
    if (this.header.version < 3) {
      // No zero flag in version 2: unallocated reads as zeroes only without a backing file.
      if (backed) {
        this.write(cluster * this.#clusterSize, [this.#zeroBuffer()]);
        return;
      }
      this.#map.setEntry(cluster, 0, {}, this.#refcounts!);
      this.#release(kind, hi, lo, host);
      return;
    }
    if (kind === ClusterKind.Zero && (host === 0 || !(unmap || discard))) return;
    if (!unmap && !discard && kind === ClusterKind.Data && copied) {
      // Keep the host cluster (a preallocated zero cluster) for the next write.
      this.#map.setEntry(cluster, host, { copied: true, zero: true }, this.#refcounts!);
      return;
    }
    if (discard && !backed) {
      this.#map.setEntry(cluster, 0, {}, this.#refcounts!);
    } else {
      this.#map.setEntry(cluster, 0, { zero: true }, this.#refcounts!);
    }
    this.#release(kind, hi, lo, host);
  }

  #zeroBuffer(): Uint8Array {
    this.#zeroes ??= new Uint8Array(this.#clusterSize);
    return this.#zeroes;
  }

  #refuseIfClosed(what: string): void {
    if (this.#file.closed) throw new DiskError(`Cannot ${what} disk ${this.path}: it is closed`);
  }

  #refuseIfReadOnly(what: string): void {
    this.#refuseIfClosed(what);
    if (this.readOnly) throw new DiskError(`Cannot ${what} disk ${this.path}: it is read-only`);
  }
}

/** Refuses to write to an image whose refcounts cannot be trusted. */
function refuseUnsafeWrites(header: Qcow2Header, path: string): void {
  if ((header.incompatible & INCOMPAT_CORRUPT) !== 0) {
    throw new ImageError(
      `Image ${path} is marked corrupt; open it read-only, or repair it with qemu-img check -r all`,
    );
  }
  if ((header.incompatible & INCOMPAT_DIRTY) !== 0) {
    throw new ImageError(
      `Image ${path} is dirty (it was in use with lazy refcounts and not closed cleanly), so its refcounts may be stale; repair it with qemu-img check -r all, or open it read-only`,
    );
  }
}
