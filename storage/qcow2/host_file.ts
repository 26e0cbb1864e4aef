/**
 * The host file under a qcow2 image: positioned vector I/O between the file and caller
 * views (often guest memory), reads past the end of the file as zeroes, fdatasync, hole
 * punching, and the same image lock as raw disks (QEMU's layout, ../image_lock.ts).
 *
 * @module
 */

import { closeFd } from "../../ffi/libc.ts";
import { fdatasync, ftruncate } from "../../ffi/fs.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from "../../ffi/libc_symbols.ts";
import { DiskError } from "../disk.ts";
import { FileIo } from "../file_io.ts";
import { openImageFile } from "../image_file.ts";

/** An open, locked image file. */
export class HostFile {
  readonly path: string;
  readonly readOnly: boolean;
  /** Device and inode, as a stable disk id. */
  readonly id: string;
  #fd: number;
  #size: number;
  readonly #io: FileIo;

  private constructor(path: string, fd: number, size: number, id: string, readOnly: boolean) {
    this.path = path;
    this.#fd = fd;
    this.#io = new FileIo(path);
    this.#size = size;
    this.id = id;
    this.readOnly = readOnly;
  }

  /**
   * Opens and locks `path` (storage/image_lock.ts: readers share, a writer is alone); only
   * a regular file holds a qcow2 image here.
   */
  static open(path: string, readOnly: boolean): HostFile {
    const file = openImageFile(path, { readOnly });
    if (file.kind !== "file") {
      closeFd(file.fd);
      throw new DiskError(`Cannot open disk ${path}: a qcow2 image must be a regular file`);
    }
    return new HostFile(path, file.fd, file.size, file.id, readOnly);
  }

  /** The file size in bytes, as this process has made it. */
  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Fills `buffers` from `offset`; bytes past the end of the file read as zeroes. */
  readv(offset: number, buffers: readonly Uint8Array[]): void {
    this.#vectored("read", offset, buffers);
  }

  /** Writes `buffers` in order at `offset`. */
  writev(offset: number, buffers: readonly Uint8Array[]): void {
    this.#vectored("write", offset, buffers);
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    if (offset + total > this.#size) this.#size = offset + total;
  }

  /** Reads `length` bytes at `offset` into a new buffer. */
  readBytes(offset: number, length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    this.readv(offset, [bytes]);
    return bytes;
  }

  /** Writes `bytes` at `offset`. */
  write(offset: number, bytes: Uint8Array): void {
    this.writev(offset, [bytes]);
  }

  /** fdatasync. */
  sync(): void {
    this.#retry(() => fdatasync(this.#fd), "fdatasync");
  }

  /** Makes the file at least `size` bytes long (sparse). */
  grow(size: number): void {
    if (size <= this.#size) return;
    this.#retry(() => ftruncate(this.#fd, size), "ftruncate");
    this.#size = size;
  }

  /** Sets the file size. */
  truncate(size: number): void {
    this.#retry(() => ftruncate(this.#fd, size), "ftruncate");
    this.#size = size;
  }

  /** Punches a hole; false when the file system cannot (the bytes are then unchanged). */
  punchHole(offset: number, length: number): boolean {
    return this.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
  }

  /** fallocate(mode); false when the file system does not support `mode`. */
  fallocate(mode: number, offset: number, length: number): boolean {
    if (!this.#io.fallocate(this.#fd, mode, offset, length)) return false;
    if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && offset + length > this.#size) {
      this.#size = offset + length;
    }
    return true;
  }

  /** Closes the file, releasing its lock. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }

  #vectored(kind: "read" | "write", offset: number, buffers: readonly Uint8Array[]): void {
    if (this.#fd < 0) throw new DiskError(`Cannot ${kind} disk ${this.path}: it is closed`);
    this.#io.transfer(this.#fd, kind, offset, buffers);
  }

  #retry(call: () => number, name: string): void {
    if (this.#fd < 0) throw new DiskError(`Cannot ${name} disk ${this.path}: it is closed`);
    this.#io.retry(name, call);
  }
}
