/**
 * File descriptor calls on byte views, for code outside ffi/ that must not see pointers
 * or the libc table. Each returns what the C call returns: a count (or 0) on success, -1
 * on failure with the reason in `errno()`, read right after on the same thread. That
 * keeps EINTR retries and EAGAIN drops on hot paths free of exceptions; callers that
 * just want to fail use `unwrap(result, call)` from libc.ts.
 *
 * @module
 */

import { cString, libc, pointerOf } from "./libc.ts";

/** open(2): a descriptor, or -1 (see `errno()`). `openFile` is the throwing form. */
export function tryOpen(path: string, flags: number, mode = 0): number {
  return libc().open(cString(path), flags, mode);
}

/** read(2) into `bytes`: bytes read (0 at end of file), or -1. */
export function read(fd: number, bytes: Uint8Array): number {
  return Number(libc().read(fd, bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length)));
}

/** write(2) of `bytes`: bytes written, or -1. */
export function write(fd: number, bytes: Uint8Array): number {
  return Number(libc().write(fd, bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length)));
}

/** pread(2) into `bytes` at `offset`: bytes read (0 at end of file), or -1. */
export function pread(fd: number, bytes: Uint8Array, offset: number): number {
  return Number(libc().pread(fd, pointerOf(bytes), BigInt(bytes.length), BigInt(offset)));
}

/** pwrite(2) of `bytes` at `offset`: bytes written, or -1. */
export function pwrite(fd: number, bytes: Uint8Array, offset: number): number {
  return Number(libc().pwrite(fd, pointerOf(bytes), BigInt(bytes.length), BigInt(offset)));
}

/** fsync(2): 0, or -1. */
export function fsync(fd: number): number {
  return libc().fsync(fd);
}

/** fdatasync(2): 0, or -1. */
export function fdatasync(fd: number): number {
  return libc().fdatasync(fd);
}

/** ftruncate(2) to `size` bytes: 0, or -1. */
export function ftruncate(fd: number, size: number): number {
  return libc().ftruncate(fd, BigInt(size));
}

/** fallocate(2) with `mode` (FALLOC_FL_* in libc_symbols.ts): 0, or -1. */
export function fallocate(fd: number, mode: number, offset: number, length: number): number {
  return libc().fallocate(fd, mode, BigInt(offset), BigInt(length));
}

/** lseek(2) (SEEK_DATA and SEEK_HOLE included): the new offset, or -1. */
export function lseek(fd: number, offset: number, whence: number): number {
  return Number(libc().lseek(fd, BigInt(offset), whence));
}

/** dup2(2): `target` now refers to what `fd` does; `target`, or -1. */
export function dup2(fd: number, target: number): number {
  return libc().dup2(fd, target);
}

/** getrandom(2) into `bytes` with `flags`: bytes filled (may be short), or -1. */
export function getrandom(bytes: Uint8Array, flags = 0): number {
  return Number(libc().getrandom(bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length), flags));
}

/** ioctl(2) with a pointer to `bytes`: the call's result (>= 0), or -1. */
export function ioctl(fd: number, request: bigint, bytes: Uint8Array): number {
  return libc().ioctl(fd, request, pointerOf(bytes));
}

/** ioctl(2) with an integer argument: the call's result (>= 0), or -1. */
export function ioctlWithValue(fd: number, request: bigint, value: number | bigint): number {
  return libc().ioctl_value(fd, request, BigInt(value));
}

/**
 * A byte view whose host pointer is taken once, for loops of pread/pwrite into the same
 * buffer at many offsets (the block benchmark's host baseline measures the bare system
 * call this way). The view's memory must stay mapped while the buffer is used.
 */
export class PinnedBuffer {
  /** The view transfers go to and from. */
  readonly bytes: Uint8Array;
  readonly #pointer: Deno.PointerValue;
  readonly #length: bigint;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#pointer = pointerOf(bytes);
    this.#length = BigInt(bytes.length);
  }

  /** pread(2) of the whole buffer at `offset`: bytes read, or -1. */
  pread(fd: number, offset: number): number {
    return Number(libc().pread(fd, this.#pointer, this.#length, BigInt(offset)));
  }

  /** pwrite(2) of the whole buffer at `offset`: bytes written, or -1. */
  pwrite(fd: number, offset: number): number {
    return Number(libc().pwrite(fd, this.#pointer, this.#length, BigInt(offset)));
  }
}
