/**
 * Reusable struct iovec arrays over byte views (often live guest memory), for
 * preadv/pwritev without a per-request allocation.
 *
 * @module
 */

import { pointerOf } from "../ffi/libc.ts";

/** Linux's IOV_MAX: preadv/pwritev refuse more entries, so callers batch. */
export const IOV_MAX = 1024;

/** A reusable iovec array of up to IOV_MAX entries (16 bytes each: base, length). */
export class IovecArray {
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(IOV_MAX * 16);
  readonly #words = new BigUint64Array(this.bytes.buffer);
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
    const index = this.#count * 2;
    this.#words[index] = BigInt(Deno.UnsafePointer.value(pointerOf(buffer)));
    this.#words[index + 1] = BigInt(buffer.length);
    this.#count++;
    this.#length += buffer.length;
  }
}
