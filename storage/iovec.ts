/**
 * Reusable struct iovec arrays over byte views (often live guest memory), for
 * preadv/pwritev without a per-request allocation.
 *
 * @module
 */

import { addressOf } from "../ffi/libc.ts";

export { addressOf };

/** Linux's IOV_MAX: preadv/pwritev refuse more entries, so callers batch. */
export const IOV_MAX = 1024;

/** A reusable iovec array of up to IOV_MAX entries (16 bytes each: base, length). */
export class IovecArray {
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(IOV_MAX * 16);
  /** The entries as 32-bit halves: filling them from numbers avoids a BigInt per buffer. */
  readonly #halves = new Uint32Array(this.bytes.buffer);
  #count = 0;
  #length = 0;

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

  clear(): void {
    this.#count = 0;
    this.#length = 0;
  }

  /** Appends `buffer` (empty buffers are skipped); the caller checks `full` first. */
  add(buffer: Uint8Array): void {
    if (buffer.length === 0) return;
    if (this.full) throw new RangeError(`An iovec array holds at most ${IOV_MAX} entries`);
    const index = this.#count * 4;
    const address = addressOf(buffer); // user-space addresses are < 2^47
    this.#halves[index] = address % 0x1_0000_0000;
    this.#halves[index + 1] = Math.floor(address / 0x1_0000_0000);
    this.#halves[index + 2] = buffer.length;
    this.#halves[index + 3] = 0;
    this.#count++;
    this.#length += buffer.length;
  }
}
