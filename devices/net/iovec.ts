/**
 * struct iovec arrays over guest buffers, for readv/writev straight between a tap and
 * guest memory.
 *
 * @module
 */

import { addressOf } from "../../ffi/libc.ts";

/** Linux's IOV_MAX: readv/writev refuse more entries. */
export const IOV_MAX = 1024;

/** A reusable iovec array (16 bytes per entry: base pointer, length). */
export class IovecList {
  readonly bytes = new Uint8Array(IOV_MAX * 16);
  readonly #words = new BigUint64Array(this.bytes.buffer);
  #count = 0;

  /** Entries added since `clear()`. */
  get count(): number {
    return this.#count;
  }

  clear(): void {
    this.#count = 0;
  }

  /**
   * Appends `buffer`; false when the list is full (the caller drops the request). One
   * entry stays free for `addLast`.
   */
  add(buffer: Uint8Array): boolean {
    if (buffer.length === 0) return true;
    if (this.#count >= IOV_MAX - 1) return false;
    this.#append(buffer);
    return true;
  }

  /** Appends `buffer` in the entry `add` keeps free (e.g. an overflow detector). */
  addLast(buffer: Uint8Array): void {
    if (buffer.length === 0 || this.#count === IOV_MAX) return;
    this.#append(buffer);
  }

  #append(buffer: Uint8Array): void {
    this.#words[this.#count * 2] = BigInt(addressOf(buffer));
    this.#words[this.#count * 2 + 1] = BigInt(buffer.length);
    this.#count++;
  }
}
