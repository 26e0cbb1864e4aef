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

import { type Disk, DiskError, type WriteZeroesOptions } from "./disk.ts";
import { RawDisk } from "./raw_disk.ts";
import { ImageError } from "./qcow2/errors.ts";
import { QCOW2_MAGIC } from "./qcow2/format.ts";
import { Qcow2Disk } from "./qcow2/qcow2_disk.ts";
import { createQcow2 } from "./qcow2/create.ts";
import {
  backingPath,
  type BackingPolicy,
  BackingRefused,
  checkBackingAllowed,
  checkBackingFormat,
  checkSameBacking,
  enterChain,
  type ImageFormat,
  probeFormat,
} from "./image_probe.ts";

export { ImageError };
export { backingPath, type BackingPolicy, BackingRefused, type ImageFormat, probeFormat };
export { fileIdentity } from "./image_file.ts";
export { checkImage, type CheckResult, type ImageInfo, imageInfo } from "./image_info.ts";

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
  /**
   * Where backing files may live, at every depth of the chain (images that enter through
   * the daemon); default: anywhere, as qemu-img.
   */
  backingPolicy?: BackingPolicy;
}

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
    // A raw base counts towards the chain's depth, as imageInfo counts it.
    if (chain.length > 0) enterChain(path, chain);
    const disk = RawDisk.open(path, { readOnly: options.readOnly, direct: options.direct });
    return options.format === undefined && !disk.readOnly ? new ProbedRawImage(disk) : disk;
  }
  if (options.direct) {
    throw new ImageError(`Cannot open ${path} with direct I/O: qcow2 images use the page cache`);
  }
  const real = enterChain(path, chain);
  return Qcow2Disk.open(path, {
    readOnly: options.readOnly,
    openBacking: (name, backingFormat) =>
      openBacking(path, name, checkBackingFormat(backingFormat, path), options, [...chain, real]),
  });
}

function openBacking(
  path: string,
  name: string,
  format: ImageFormat | undefined,
  options: OpenImageOptions,
  chain: string[],
): Image {
  const backing = backingPath(path, name);
  const policy = options.backingPolicy;
  const approved = policy ? checkBackingAllowed(path, backing, policy) : undefined;
  const image = openInChain(backing, { readOnly: true, format, backingPolicy: policy }, chain);
  if (approved !== undefined) {
    try {
      checkSameBacking(path, backing, approved, image.id);
    } catch (error) {
      image.close();
      throw error;
    }
  }
  return image;
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
    file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    Deno.chmodSync(path, 0o600); // images are private whatever the umask
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
