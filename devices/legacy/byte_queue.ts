/**
 * A fixed-capacity FIFO of bytes (a ring buffer), shared by the UART's receive FIFO, its
 * input backlog and the i8042 output buffer.
 *
 * @module
 */

/** A bounded byte FIFO: pushes beyond the capacity are refused, never grown. */
export class ByteQueue {
  #bytes: Uint8Array;
  #head = 0;
  #length = 0;

  /** Creates an empty queue that holds at most `capacity` bytes. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Byte queue capacity must be a positive integer, got ${capacity}`);
    }
    this.#bytes = new Uint8Array(capacity);
  }

  /** Bytes currently queued. */
  get length(): number {
    return this.#length;
  }

  /** Most bytes the queue can hold. */
  get capacity(): number {
    return this.#bytes.length;
  }

  /** Room left before pushes are refused. */
  get free(): number {
    return this.#bytes.length - this.#length;
  }

  /** Appends one byte; returns false (and drops it) when the queue is full. */
  pushByte(byte: number): boolean {
    if (this.#length === this.#bytes.length) return false;
    this.#bytes[(this.#head + this.#length) % this.#bytes.length] = byte;
    this.#length++;
    return true;
  }

  /** Appends as many of `bytes` as fit, in order; returns how many were taken. */
  push(bytes: Uint8Array): number {
    const taken = Math.min(bytes.length, this.free);
    for (let i = 0; i < taken; i++) this.pushByte(bytes[i]);
    return taken;
  }

  /** Removes and returns the oldest byte, or undefined when empty. */
  shift(): number | undefined {
    if (this.#length === 0) return undefined;
    const byte = this.#bytes[this.#head];
    this.#head = (this.#head + 1) % this.#bytes.length;
    this.#length--;
    return byte;
  }

  /** The oldest byte without removing it, or undefined when empty. */
  peek(): number | undefined {
    return this.#length === 0 ? undefined : this.#bytes[this.#head];
  }

  /** The queued bytes, oldest first (a copy), for saved state. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    for (let i = 0; i < this.#length; i++) {
      out[i] = this.#bytes[(this.#head + i) % this.#bytes.length];
    }
    return out;
  }

  /** Replaces the contents with `bytes` (at most `capacity`; the caller checked). */
  replace(bytes: Uint8Array): void {
    if (bytes.length > this.#bytes.length) {
      throw new RangeError(`${bytes.length} bytes do not fit a queue of ${this.#bytes.length}`);
    }
    this.#bytes.set(bytes);
    this.#head = 0;
    this.#length = bytes.length;
  }

  /** Empties the queue. */
  clear(): void {
    this.#head = 0;
    this.#length = 0;
  }
}
