/**
 * The one place image_ops meets the image layer (storage/image.ts). Until that module
 * lands this is a raw-only stand-in with the contract's shapes, so the operations can be
 * written and tested on raw files; afterwards it only re-exports.
 *
 * @module
 */

import { type Disk, DiskError } from "../disk.ts";
import { RawDisk } from "../raw_disk.ts";

/** Image formats Denovisor reads and writes. */
export type ImageFormat = "raw" | "qcow2";

/** One run of bytes with the same status, as qemu-img map reports it. */
export interface BlockExtent {
  offset: number;
  length: number;
  /** Data for this range is stored in this image itself (not in a backing file). */
  allocated: boolean;
  /** The range reads as zeroes. */
  zero: boolean;
  /** Depth in the chain that provides the data: 0 = this image, 1 = its backing... */
  depth: number;
}

/** A Disk that knows its format and backing chain. */
export interface Image extends Disk {
  readonly format: ImageFormat;
  readonly backing?: Image;
  blockStatus(offset: number, length: number): BlockExtent;
}

/** Options of `openImage`. */
export interface OpenImageOptions {
  readOnly?: boolean;
  format?: ImageFormat;
  direct?: boolean;
}

/** Options of `createImage`. */
export interface CreateImageOptions {
  format: ImageFormat;
  size?: number;
  clusterSize?: number;
  backingFile?: string;
  backingFormat?: ImageFormat;
  preallocation?: "off" | "metadata" | "full";
}

/** Errors about an image's contents or options (not I/O). */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

class RawImage implements Image {
  readonly format = "raw" as const;
  readonly #disk: RawDisk;
  constructor(disk: RawDisk) {
    this.#disk = disk;
  }
  get path() {
    return this.#disk.path;
  }
  get size() {
    return this.#disk.size;
  }
  get readOnly() {
    return this.#disk.readOnly;
  }
  get id() {
    return this.#disk.id;
  }
  read(offset: number, buffers: readonly Uint8Array[]) {
    this.#disk.read(offset, buffers);
  }
  write(offset: number, buffers: readonly Uint8Array[]) {
    this.#disk.write(offset, buffers);
  }
  flush() {
    this.#disk.flush();
  }
  discard(offset: number, length: number) {
    this.#disk.discard(offset, length);
  }
  writeZeroes(offset: number, length: number, options?: { unmap?: boolean }) {
    this.#disk.writeZeroes(offset, length, options);
  }
  resize(newSize: number) {
    this.#disk.resize(newSize);
  }
  close() {
    this.#disk.close();
  }
  blockStatus(offset: number, length: number): BlockExtent {
    return { offset, length, allocated: true, zero: false, depth: 0 };
  }
}

/** Opens an image (raw only in this stand-in). */
export function openImage(path: string, options: OpenImageOptions = {}): Image {
  if (options.format !== undefined && options.format !== "raw") {
    throw new ImageError(`Cannot open ${path} as ${options.format}: not supported yet`);
  }
  return new RawImage(RawDisk.open(path, { readOnly: options.readOnly, direct: options.direct }));
}

/** Creates a new image (raw only in this stand-in); refuses to overwrite a file. */
export function createImage(path: string, options: CreateImageOptions): void {
  if (options.format !== "raw") {
    throw new ImageError(`Cannot create ${path} as ${options.format}: not supported yet`);
  }
  if (options.size === undefined) throw new ImageError(`Cannot create ${path}: no size given`);
  try {
    const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o644 });
    file.truncateSync(options.size);
    file.close();
  } catch (error) {
    throw new DiskError(`Cannot create ${path}: ${(error as Error).message}`, { cause: error });
  }
}
