/**
 * The small interface every disk backend implements (raw files now, qcow2 later), as
 * virtio-blk and the tools see it. Calls are synchronous: the VMM's device loop performs
 * block I/O straight between the image and guest memory.
 *
 * @module
 */

import { DenovisorError, type ErrorCode } from "../common/errors.ts";

/** Options of `DiskError`. */
export interface DiskErrorOptions {
  /** errno of the failed system call, when there was one. */
  errno?: number;
  cause?: unknown;
  /** Default `internal` (an I/O failure); `busy` for a locked disk, `not_found`... */
  code?: ErrorCode;
}

/** A disk operation that failed; the device answers the request with an I/O error. */
export class DiskError extends DenovisorError {
  /** errno of the failed system call, when there was one. */
  readonly errno?: number;

  constructor(message: string, options: DiskErrorOptions = {}) {
    super(options.code ?? "internal", message, { cause: options.cause });
    this.errno = options.errno;
  }
}

/** Options of `Disk.writeZeroes`. */
export interface WriteZeroesOptions {
  /** The range may be deallocated (a hole) as long as it reads back as zeroes. */
  unmap?: boolean;
}

/** A virtual disk: a byte array of `size` bytes on stable storage. */
export interface Disk {
  /** Where the image lives, for messages. */
  readonly path: string;
  /** Size in bytes. */
  readonly size: number;
  /** Whether writes, discards and write-zeroes are refused. */
  readonly readOnly: boolean;
  /** A stable identifier of the image (e.g. device and inode), at most 20 ASCII bytes. */
  readonly id: string;
  /**
   * Fills `buffers` in order with the bytes at `offset`. Throws `DiskError` when the range
   * ends past `size` or the read fails. The buffers may be live views of guest memory.
   */
  read(offset: number, buffers: readonly Uint8Array[]): void;
  /** Writes `buffers` in order at `offset`. Throws `DiskError` (read-only, out of range, I/O). */
  write(offset: number, buffers: readonly Uint8Array[]): void;
  /** Makes every completed write durable (fdatasync). */
  flush(): void;
  /** Tells the backend `length` bytes at `offset` are unused; they read back as zeroes. */
  discard(offset: number, length: number): void;
  /** Makes `length` bytes at `offset` read as zeroes. */
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): void;
  /** Changes the size (grow or shrink); throws `DiskError` if the backend cannot. */
  resize?(newSize: number): void;
  /** Releases the file and its lock. Idempotent. */
  close(): void;
}

/** Throws a `DiskError` unless `[offset, offset + length)` lies inside a disk of `size` bytes. */
export function checkDiskRange(
  path: string,
  size: number,
  offset: number,
  length: number,
  what: string,
): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
    length < 0 || offset + length > size
  ) {
    throw new DiskError(
      `Cannot ${what} ${length} bytes at offset ${offset} of disk ${path}: the disk has ${size} bytes`,
    );
  }
}
