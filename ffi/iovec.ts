/**
 * The one struct iovec builder: a reusable array of (base, length) entries over byte
 * views (often live guest memory), for preadv/pwritev on disks and readv/writev on taps
 * without an allocation per request. The views' buffers must stay alive until the call
 * that uses the array returns; guest memory and the callers' own buffers do.
 *
 * The system call wrappers return what the C call returns: a byte count, or -1 with the
 * reason in `errno()` (read right after, on the same thread), so hot paths can retry
 * EINTR or drop on EAGAIN without an exception.
 *
 * @module
 */

import { addressOf, libc, STABLE_BUFFER_BYTES } from "./libc.ts";

export { addressOf };

/** Linux's IOV_MAX: the vectored calls refuse more entries, so callers batch. */
export const IOV_MAX = 1024;

/** A reusable iovec array of up to IOV_MAX entries (16 bytes each: base, length). */
export class IovecArray {
  /** The struct iovec entries, as the kernel reads them. */
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(IOV_MAX * 16);
  /** The entries as 32-bit halves: filling them from numbers avoids a BigInt per buffer. */
  readonly #halves = new Uint32Array(this.bytes.buffer);
  #count = 0;
  #length = 0;
  /**
   * The last two large sources of `tryAddRange` and their addresses: a guest RAM region
   * and a device's own buffer (virtio-net's receive overflow) alternate every frame.
   */
  #source0?: Uint8Array;
  #base0 = 0;
  #source1?: Uint8Array;
  #base1 = 0;

  /** Entries since `clear()`. */
  get count(): number {
    return this.#count;
  }

  /** Total bytes of the entries since `clear()`. */
  get length(): number {
    return this.#length;
  }

  /** Whether another entry fits. */
  get full(): boolean {
    return this.#count === IOV_MAX;
  }

  /** Forgets every entry (the array is reused). */
  clear(): void {
    this.#count = 0;
    this.#length = 0;
  }

  /** Appends `buffer` (empty buffers are skipped); the caller checks `full` first. */
  add(buffer: Uint8Array): void {
    if (!this.tryAdd(buffer)) {
      throw new RangeError(`An iovec array holds at most ${IOV_MAX} entries`);
    }
  }

  /** Keeps only the first `count` entries. */
  truncate(count: number): void {
    while (this.#count > count) {
      this.#count--;
      this.#length -= this.#halves[this.#count * 4 + 2];
    }
  }

  /**
   * Drops the first `entries` entries and moves the rest to the front (a memmove of their
   * 16 bytes each): a list kept across calls, consumed from the front, is not rebuilt.
   */
  dropFront(entries: number): void {
    const dropped = Math.min(entries, this.#count);
    if (dropped === this.#count) return this.clear();
    for (let i = 0; i < dropped; i++) this.#length -= this.#halves[i * 4 + 2];
    this.bytes.copyWithin(0, dropped * 16, this.#count * 16);
    this.#count -= dropped;
  }

  /**
   * Appends `buffer` if, after it, at least `keepFree` entries remain free; false when it
   * does not fit. Empty buffers are skipped (and fit). `keepFree` reserves room for a
   * last entry such as an overflow detector.
   */
  tryAdd(buffer: Uint8Array, keepFree = 0): boolean {
    if (buffer.length === 0) return true;
    if (this.#count + keepFree >= IOV_MAX) return false;
    const index = this.#count * 4;
    const address = addressOf(buffer); // user-space addresses are < 2^47
    this.#halves[index] = address % 0x1_0000_0000;
    this.#halves[index + 1] = Math.floor(address / 0x1_0000_0000);
    this.#halves[index + 2] = buffer.length;
    this.#halves[index + 3] = 0;
    this.#count++;
    this.#length += buffer.length;
    return true;
  }

  /**
   * `tryAdd(source.subarray(offset, offset + length), keepFree)` without making the view:
   * the caller has checked that the range lies inside `source`. Large sources' addresses
   * are remembered, so buffers in guest RAM cost no lookup.
   */
  tryAddRange(source: Uint8Array, offset: number, length: number, keepFree = 0): boolean {
    if (length === 0) return true;
    if (this.#count + keepFree >= IOV_MAX) return false;
    let base: number;
    if (source === this.#source0) {
      base = this.#base0;
    } else if (source === this.#source1) {
      base = this.#base1;
    } else {
      base = addressOf(source);
      if (source.buffer.byteLength >= STABLE_BUFFER_BYTES) {
        this.#source1 = this.#source0;
        this.#base1 = this.#base0;
        this.#source0 = source;
        this.#base0 = base;
      }
    }
    const address = base + offset;
    const index = this.#count * 4;
    this.#halves[index] = address % 0x1_0000_0000;
    this.#halves[index + 1] = Math.floor(address / 0x1_0000_0000);
    this.#halves[index + 2] = length;
    this.#halves[index + 3] = 0;
    this.#count++;
    this.#length += length;
    return true;
  }
}

/** readv(2) into the array's buffers: bytes read, or -1 (see `errno()`). */
export function readv(fd: number, iov: IovecArray): number {
  return Number(libc().readv(fd, iov.bytes, iov.count));
}

/** writev(2) from the array's buffers: bytes written, or -1 (see `errno()`). */
export function writev(fd: number, iov: IovecArray): number {
  return Number(libc().writev(fd, iov.bytes, iov.count));
}

/** preadv(2) at `offset`: bytes read, or -1 (see `errno()`). */
export function preadv(fd: number, iov: IovecArray, offset: number): number {
  return Number(libc().preadv(fd, iov.bytes, iov.count, BigInt(offset)));
}

/** pwritev(2) at `offset`: bytes written, or -1 (see `errno()`). */
export function pwritev(fd: number, iov: IovecArray, offset: number): number {
  return Number(libc().pwritev(fd, iov.bytes, iov.count, BigInt(offset)));
}
