/**
 * Raw disk images: the file's bytes are the disk's bytes. I/O goes straight between the
 * file and the caller's views (guest memory) with preadv/pwritev; flush is fdatasync;
 * discard and write-zeroes punch holes. Image locks in QEMU's byte layout
 * (image_lock.ts) keep a writer alone on an image, whether the other user is a VMM,
 * `img`, QEMU or qemu-img.
 *
 * @module
 */

import { addressOf, closeFd, errno } from "../ffi/libc.ts";
import { fdatasync, ftruncate, lseek } from "../ffi/fs.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  SEEK_DATA,
  SEEK_HOLE,
} from "../ffi/libc_symbols.ts";
import { ENXIO } from "../ffi/errno.ts";
import { checkDiskRange, type Disk, DiskError, type WriteZeroesOptions } from "./disk.ts";
import { FileIo } from "./file_io.ts";
import { openImageFile } from "./image_file.ts";
import type { BlockExtent } from "./image.ts";

/** O_DIRECT wants offsets, lengths and addresses aligned to the logical block size. */
const DIRECT_ALIGNMENT = 512;
/** Bounce buffers are page aligned, which satisfies any logical block size up to 4 KiB. */
const BOUNCE_ALIGNMENT = 4096;

/** Options of `RawDisk.open`. */
export interface RawDiskOptions {
  /** Open O_RDONLY and refuse writes; takes a shared (read) lock. */
  readOnly?: boolean;
  /**
   * Bypass the host page cache (O_DIRECT). Guest buffers that are not 512-byte aligned go
   * through an aligned bounce buffer.
   */
  direct?: boolean;
}

/** A raw disk image file (or block device). */
export class RawDisk implements Disk {
  readonly format = "raw" as const;
  readonly path: string;
  readonly readOnly: boolean;
  readonly direct: boolean;
  readonly id: string;
  #fd: number;
  #size: number;
  readonly #io: FileIo;
  #bounce?: Uint8Array;

  private constructor(path: string, fd: number, size: number, id: string, options: RawDiskOptions) {
    this.path = path;
    this.#fd = fd;
    this.#io = new FileIo(path);
    this.#size = size;
    this.id = id;
    this.readOnly = options.readOnly ?? false;
    this.direct = options.direct ?? false;
  }

  /**
   * Opens the image at `path` (a regular file or block device, storage/image_file.ts) and
   * locks it as QEMU does (storage/image_lock.ts): a writer is alone, readers share, and
   * a conflict is a `DiskError` saying the disk is in use.
   */
  static open(path: string, options: RawDiskOptions = {}): RawDisk {
    const file = openImageFile(path, { readOnly: options.readOnly, direct: options.direct });
    return new RawDisk(path, file.fd, file.size, file.id, options);
  }

  get size(): number {
    return this.#size;
  }

  read(offset: number, buffers: readonly Uint8Array[]): void {
    this.#transfer("read", offset, buffers);
  }

  write(offset: number, buffers: readonly Uint8Array[]): void {
    this.#refuseIfReadOnly("write");
    this.#transfer("write", offset, buffers);
  }

  flush(): void {
    if (this.readOnly) return;
    this.#io.retry("fdatasync", () => fdatasync(this.#fd));
  }

  discard(offset: number, length: number): void {
    this.#refuseIfReadOnly("discard");
    checkDiskRange(this.path, this.#size, offset, length, "discard");
    if (length === 0) return;
    if (!this.#io.fallocate(this.#fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)) {
      this.#writeZeroesByHand(offset, length);
    }
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): void {
    this.#refuseIfReadOnly("write zeroes to");
    checkDiskRange(this.path, this.#size, offset, length, "write zeroes to");
    if (length === 0) return;
    const mode = options.unmap
      ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
      : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    if (this.#io.fallocate(this.#fd, mode, offset, length)) return;
    this.#writeZeroesByHand(offset, length);
  }

  resize(newSize: number): void {
    this.#refuseIfReadOnly("resize");
    if (!Number.isSafeInteger(newSize) || newSize < 0) {
      throw new DiskError(`Cannot resize disk ${this.path} to ${newSize} bytes: not a size`);
    }
    this.#io.retry("ftruncate", () => ftruncate(this.#fd, newSize));
    this.#size = newSize;
  }

  /**
   * Whether the bytes at `offset` are data or a hole (SEEK_DATA/SEEK_HOLE): the longest
   * run of one kind, at most `length` bytes. Without hole support everything is data.
   */
  blockStatus(offset: number, length: number): BlockExtent {
    checkDiskRange(this.path, this.#size, offset, length, "query");
    const extent = (run: number, hole: boolean): BlockExtent => ({
      offset,
      length: Math.max(0, Math.min(run, length)),
      allocated: !hole,
      zero: hole,
      depth: 0,
    });
    if (this.#fd < 0) throw new DiskError(`Cannot query disk ${this.path}: it is closed`);
    const data = lseek(this.#fd, offset, SEEK_DATA);
    if (data < 0) return extent(length, errno() === ENXIO);
    if (data > offset) return extent(data - offset, true);
    const hole = lseek(this.#fd, offset, SEEK_HOLE);
    return extent(hole < 0 ? length : hole - offset, false);
  }

  close(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd); // closing the last descriptor releases the OFD lock
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #refuseIfReadOnly(what: string): void {
    if (this.readOnly) throw new DiskError(`Cannot ${what} disk ${this.path}: it is read-only`);
    if (this.#fd < 0) throw new DiskError(`Cannot ${what} disk ${this.path}: it is closed`);
  }

  #transfer(kind: "read" | "write", offset: number, buffers: readonly Uint8Array[]): void {
    if (this.#fd < 0) throw new DiskError(`Cannot ${kind} disk ${this.path}: it is closed`);
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    checkDiskRange(this.path, this.#size, offset, total, kind);
    if (this.direct && !directAligned(offset, buffers)) {
      this.#bounced(kind, offset, buffers, total);
      return;
    }
    this.#io.transfer(this.#fd, kind, offset, buffers);
  }

  /** O_DIRECT with misaligned buffers: through an aligned bounce buffer. */
  #bounced(kind: "read" | "write", offset: number, buffers: readonly Uint8Array[], total: number) {
    if (offset % DIRECT_ALIGNMENT !== 0 || total % DIRECT_ALIGNMENT !== 0) {
      throw new DiskError(
        `Cannot ${kind} ${total} bytes at offset ${offset} of disk ${this.path}: direct I/O needs ${DIRECT_ALIGNMENT}-byte alignment`,
      );
    }
    const bounce = this.#bounceOf(total);
    if (kind === "write") {
      let at = 0;
      for (const buffer of buffers) {
        bounce.set(buffer, at);
        at += buffer.length;
      }
    }
    this.#io.transfer(this.#fd, kind, offset, [bounce]);
    if (kind === "read") {
      let at = 0;
      for (const buffer of buffers) {
        buffer.set(bounce.subarray(at, at + buffer.length));
        at += buffer.length;
      }
    }
  }

  #bounceOf(length: number): Uint8Array {
    if (this.#bounce === undefined || this.#bounce.length < length) {
      const raw = new Uint8Array(length + BOUNCE_ALIGNMENT);
      const address = addressOf(raw);
      const skip = (BOUNCE_ALIGNMENT - (address % BOUNCE_ALIGNMENT)) % BOUNCE_ALIGNMENT;
      this.#bounce = raw.subarray(skip, skip + length);
    }
    return this.#bounce.subarray(0, length);
  }

  #writeZeroesByHand(offset: number, length: number): void {
    const chunk = new Uint8Array(Math.min(length, 1 << 20));
    for (let at = 0; at < length; at += chunk.length) {
      const piece = chunk.subarray(0, Math.min(chunk.length, length - at));
      this.#transferWithoutBounce(offset + at, piece);
    }
  }

  #transferWithoutBounce(offset: number, piece: Uint8Array): void {
    if (this.direct) {
      this.#bounced("write", offset, [piece], piece.length);
      return;
    }
    this.#io.transfer(this.#fd, "write", offset, [piece]);
  }
}

function directAligned(offset: number, buffers: readonly Uint8Array[]): boolean {
  if (offset % DIRECT_ALIGNMENT !== 0) return false;
  for (const buffer of buffers) {
    if (buffer.length % DIRECT_ALIGNMENT !== 0) return false;
    if (buffer.length === 0) continue;
    if (addressOf(buffer) % DIRECT_ALIGNMENT !== 0) return false;
  }
  return true;
}
