/**
 * Disk images by format: opening a raw or qcow2 image with its backing chain, creating
 * images, describing them and checking them. This is the entry point the VMM, the pool
 * manager and `denovisor img` use.
 *
 * ```ts
 * import { createImage, openImage } from "./storage/image.ts";
 * createImage("/var/tmp/overlay.qcow2", { format: "qcow2", backingFile: "base.raw" });
 * const disk = openImage("/var/tmp/overlay.qcow2");
 * ```
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import { type Disk, DiskError, type WriteZeroesOptions } from "./disk.ts";
import { RawDisk } from "./raw_disk.ts";
import { ImageError } from "./qcow2/errors.ts";
import { parseHeader, QCOW2_MAGIC } from "./qcow2/format.ts";
import { Qcow2Disk } from "./qcow2/qcow2_disk.ts";
import { createQcow2 } from "./qcow2/create.ts";
import { checkQcow2 } from "./qcow2/check.ts";
import { readSnapshotTable } from "./qcow2/snapshot_table.ts";

export { ImageError };

/** The image formats Denovisor reads and writes. */
export type ImageFormat = "raw" | "qcow2";

/** One run of bytes with the same status, as qemu-img map reports it. */
export interface BlockExtent {
  /** Guest offset. */
  offset: number;
  length: number;
  /** Data for this range is stored in this image itself (not in a backing file). */
  allocated: boolean;
  /** The range reads as zeroes (a zero cluster, a hole, or unallocated all the way down). */
  zero: boolean;
  /** Depth in the chain that provides the data: 0 = this image, 1 = its backing... */
  depth: number;
}

/** A Disk (storage/disk.ts) that knows its format and backing chain. */
export interface Image extends Disk {
  readonly format: ImageFormat;
  /** The backing image (opened read-only), for qcow2 overlays. */
  readonly backing?: Image;
  /** Status of the bytes at `offset`: the longest extent of one status starting there,
   *  at most `length` long. */
  blockStatus(offset: number, length: number): BlockExtent;
}

/** Options of `openImage`. */
export interface OpenImageOptions {
  /** Default false; backing files are always read-only. */
  readOnly?: boolean;
  /** Default: probed (qcow2 magic -> qcow2, else raw). */
  format?: ImageFormat;
  /** O_DIRECT where the format supports it (raw). */
  direct?: boolean;
}

/** Backing chains deeper than this are refused as absurd. */
const MAX_CHAIN_DEPTH = 256;

/**
 * Opens the image at `path` and, for qcow2 overlays, its backing chain (read-only, shared
 * locks). Throws `ImageError` for malformed images and backing loops, `DiskError` for I/O.
 */
export function openImage(path: string, options: OpenImageOptions = {}): Image {
  return openInChain(path, options, []);
}

function openInChain(path: string, options: OpenImageOptions, chain: string[]): Image {
  const format = options.format ?? probeFormat(path);
  if (format === "raw") {
    const disk = RawDisk.open(path, { readOnly: options.readOnly, direct: options.direct });
    return options.format === undefined && !disk.readOnly ? new ProbedRawImage(disk) : disk;
  }
  if (options.direct) {
    throw new ImageError(`Cannot open ${path} with direct I/O: qcow2 images use the page cache`);
  }
  const real = realPath(path);
  if (chain.includes(real)) {
    throw new ImageError(
      `Image ${chain[0]} has a backing chain that loops: ${[...chain, real].join(" -> ")}`,
    );
  }
  if (chain.length >= MAX_CHAIN_DEPTH) {
    throw new ImageError(`Image ${chain[0]} has a backing chain deeper than ${MAX_CHAIN_DEPTH}`);
  }
  return Qcow2Disk.open(path, {
    readOnly: options.readOnly,
    openBacking: (name, backingFormat) =>
      openInChain(
        backingPath(path, name),
        { readOnly: true, format: checkFormat(backingFormat, path) },
        [...chain, real],
      ),
  });
}

/**
 * A raw image whose format was probed, not given. Its guest must not write a qcow2 header
 * into its first bytes: the next probe would take the disk for a qcow2 image whose backing
 * file the guest chose (any host file). QEMU restricts probed raw images the same way.
 */
class ProbedRawImage implements Image {
  readonly format = "raw" as const;
  readonly #disk: RawDisk;

  constructor(disk: RawDisk) {
    this.#disk = disk;
  }

  get path(): string {
    return this.#disk.path;
  }
  get size(): number {
    return this.#disk.size;
  }
  get readOnly(): boolean {
    return this.#disk.readOnly;
  }
  get id(): string {
    return this.#disk.id;
  }

  read(offset: number, buffers: readonly Uint8Array[]): void {
    this.#disk.read(offset, buffers);
  }

  write(offset: number, buffers: readonly Uint8Array[]): void {
    if (offset < 4 && writesQcow2Magic(this.#disk, offset, buffers)) {
      throw new DiskError(
        `Cannot write a qcow2 header to raw disk ${this.path}: its format was probed; give the format explicitly to allow this`,
      );
    }
    this.#disk.write(offset, buffers);
  }

  flush(): void {
    this.#disk.flush();
  }
  discard(offset: number, length: number): void {
    this.#disk.discard(offset, length);
  }
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): void {
    this.#disk.writeZeroes(offset, length, options);
  }
  resize(newSize: number): void {
    this.#disk.resize(newSize);
  }
  blockStatus(offset: number, length: number): BlockExtent {
    return this.#disk.blockStatus(offset, length);
  }
  close(): void {
    this.#disk.close();
  }
}

/** Whether writing `buffers` at `offset` (< 4) leaves the qcow2 magic at the disk's start. */
function writesQcow2Magic(disk: Disk, offset: number, buffers: readonly Uint8Array[]): boolean {
  if (disk.size < 4) return false;
  const start = new Uint8Array(4);
  disk.read(0, [start]);
  let position = offset;
  for (const buffer of buffers) {
    for (let i = 0; i < buffer.length && position < 4; i++) start[position++] = buffer[i];
  }
  return new DataView(start.buffer).getUint32(0) === QCOW2_MAGIC;
}

/** The backing file `name` of the image at `path`: relative names are relative to its folder. */
export function backingPath(path: string, name: string): string {
  return isAbsolute(name) ? name : resolve(dirname(path), name);
}

function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(`Cannot open image ${path}: no such file`);
    }
    throw error;
  }
}

function checkFormat(format: string | undefined, path: string): ImageFormat | undefined {
  if (format === undefined || format === "raw" || format === "qcow2") return format;
  throw new ImageError(`Image ${path} names backing format "${format}"; only raw and qcow2 work`);
}

/** The format of the image at `path` by its magic: qcow2 or raw. */
export function probeFormat(path: string): ImageFormat {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(`Cannot open image ${path}: no such file`);
    }
    throw new ImageError(`Cannot open image ${path}: ${(error as Error).message}`);
  }
  try {
    const magic = new Uint8Array(4);
    const n = file.readSync(magic);
    return n === 4 && new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? "qcow2" : "raw";
  } finally {
    file.close();
  }
}

/** Options of `createImage`. */
export interface CreateImageOptions {
  format: ImageFormat;
  /** Bytes; defaults to the backing file's size. */
  size?: number;
  /** qcow2: power of two 4 KiB..2 MiB, default 64 KiB. */
  clusterSize?: number;
  /** qcow2 only; stored as given (relative = relative to the new image's folder). */
  backingFile?: string;
  /** Probed when omitted. */
  backingFormat?: ImageFormat;
  /** raw: off|full (fallocate); qcow2: all three. */
  preallocation?: "off" | "metadata" | "full";
}

/** Creates a new image; refuses to overwrite an existing file. */
export function createImage(path: string, options: CreateImageOptions): void {
  const preallocation = options.preallocation ?? "off";
  if (options.format === "raw") {
    if (options.backingFile !== undefined) {
      throw new ImageError(`Cannot create ${path}: raw images have no backing file; use qcow2`);
    }
    if (preallocation === "metadata") {
      throw new ImageError(`Cannot create ${path}: raw images preallocate off or full only`);
    }
    createRaw(path, requireSize(path, options.size), preallocation === "full");
    return;
  }
  let size = options.size;
  let backingFormat = options.backingFormat;
  if (options.backingFile !== undefined) {
    const resolved = backingPath(path, options.backingFile);
    backingFormat ??= probeFormat(resolved);
    if (size === undefined) {
      const backing = openImage(resolved, { readOnly: true, format: backingFormat });
      size = backing.size;
      backing.close();
    }
  }
  createQcow2(path, {
    size: requireSize(path, size),
    clusterSize: options.clusterSize ?? 65536,
    backingFile: options.backingFile,
    backingFormat,
  });
  if (preallocation !== "off") {
    const image = openImage(path) as Qcow2Disk;
    try {
      image.preallocate(preallocation);
      image.flush();
    } finally {
      image.close();
    }
  }
}

function requireSize(path: string, size: number | undefined): number {
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw new ImageError(`Cannot create ${path}: give a size in bytes (or a backing file)`);
  }
  return size;
}

function createRaw(path: string, size: number, full: boolean): void {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new ImageError(
        `Cannot create ${path}: the file exists; remove it or pick another name`,
      );
    }
    throw error;
  }
  file.close();
  Deno.truncateSync(path, size);
  if (full && size > 0) {
    const disk = RawDisk.open(path);
    try {
      disk.writeZeroes(0, size); // FALLOC_FL_ZERO_RANGE allocates the blocks
      disk.flush();
    } finally {
      disk.close();
    }
  }
}

/** What `imageInfo` reports. */
export interface ImageInfo {
  path: string;
  format: ImageFormat;
  virtualSize: number;
  /** Bytes allocated on the host (st_blocks * 512). */
  actualSize: number;
  clusterSize?: number;
  /** As stored in the header. */
  backingFile?: string;
  backingFormat?: ImageFormat;
  /** Resolved absolute path. */
  fullBackingFilename?: string;
  dirty?: boolean;
  corrupt?: boolean;
  /** qcow2 internal snapshots. */
  snapshots?: { id: string; name: string; vmStateSize: number; date: string }[];
  /** The next image of the chain. */
  backing?: ImageInfo;
}

/** Describes the image at `path` and its backing chain, without locking it. */
export function imageInfo(path: string, options: { format?: ImageFormat } = {}): ImageInfo {
  return infoInChain(path, options.format, []);
}

function infoInChain(path: string, format: ImageFormat | undefined, chain: string[]): ImageInfo {
  const real = realPath(path);
  if (chain.includes(real)) {
    throw new ImageError(
      `Image ${chain[0]} has a backing chain that loops: ${[...chain, real].join(" -> ")}`,
    );
  }
  const stat = Deno.statSync(path);
  const actualSize = (stat.blocks ?? 0) * 512;
  const kind = format ?? probeFormat(path);
  if (kind === "raw") {
    let virtualSize = stat.size;
    if (stat.isBlockDevice) {
      const disk = RawDisk.open(path, { readOnly: true });
      virtualSize = disk.size;
      disk.close();
    }
    return { path, format: "raw", virtualSize, actualSize };
  }
  const file = Deno.openSync(path, { read: true });
  try {
    const bytes = readAt(file, 0, Math.min(stat.size, 2 * 1024 * 1024));
    const header = parseHeader(bytes, stat.size, path);
    const dirty = (header.incompatible & 1) !== 0;
    const corrupt = (header.incompatible & 2) !== 0;
    const info: ImageInfo = {
      path,
      format: "qcow2",
      virtualSize: header.size,
      actualSize,
      clusterSize: 2 ** header.clusterBits,
      dirty,
      corrupt,
      snapshots: readSnapshotTable(
        (offset, length) => readAt(file, offset, length),
        header,
        stat.size,
        path,
      ).map((s) => ({
        id: s.id,
        name: s.name,
        vmStateSize: s.vmStateSize,
        date: new Date(s.dateSeconds * 1000).toISOString(),
      })),
    };
    if (header.backingFile !== undefined) {
      info.backingFile = header.backingFile;
      info.backingFormat = checkFormat(header.backingFormat, path);
      info.fullBackingFilename = backingPath(path, header.backingFile);
      info.backing = infoInChain(info.fullBackingFilename, info.backingFormat, [...chain, real]);
    }
    return info;
  } finally {
    file.close();
  }
}

function readAt(file: Deno.FsFile, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = file.readSync(bytes.subarray(done));
    if (n === null || n === 0) break;
    done += n;
  }
  return bytes;
}

/** What `checkImage` found (and fixed). */
export interface CheckResult {
  format: ImageFormat;
  /** Corruptions, each described. */
  errors: string[];
  /** Leaked clusters. */
  leaks: number;
  leaksFixed: number;
  errorsFixed: number;
  allocatedClusters: number;
  totalClusters: number;
  fragmentedClusters: number;
  imageEndOffset: number;
}

/**
 * Checks the image at `path`: for qcow2, refcounts rebuilt from the metadata and
 * compared with the stored ones. `repair: "leaks"` releases leaked clusters; `"all"` also
 * raises refcounts that are too low and fixes COPIED flags.
 */
export function checkImage(path: string, options: { repair?: "leaks" | "all" } = {}): CheckResult {
  if (probeFormat(path) === "raw") {
    const size = Deno.statSync(path).size;
    return {
      format: "raw",
      errors: [],
      leaks: 0,
      leaksFixed: 0,
      errorsFixed: 0,
      allocatedClusters: 0,
      totalClusters: 0,
      fragmentedClusters: 0,
      imageEndOffset: size,
    };
  }
  return { format: "qcow2", ...checkQcow2(path, options.repair) };
}
