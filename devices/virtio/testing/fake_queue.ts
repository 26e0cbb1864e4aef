/**
 * An in-memory `VirtQueue` for device unit tests: chains are queued by the test and
 * used buffers are recorded. Not a substitute for the split-ring tests of queue.ts.
 *
 * @module
 */

import type { ChainBuffers, DescriptorChain, GuestBuffer, VirtQueue } from "../queue_types.ts";
import { parseQueueState, type SplitQueueState } from "../queue_state.ts";

/** A fake queue whose chains are built from plain byte arrays. */
export class FakeQueue implements VirtQueue {
  readonly size: number;
  readonly used: Array<{ head: number; written: number }> = [];
  readonly #pending: DescriptorChain[] = [];
  #nextHead = 0;
  #interrupts = 0;
  #popped = 0;

  constructor(size = 256) {
    this.size = size;
  }

  /** Queues a chain made of `readable` then `writable` buffers; returns its head. */
  add(readable: Uint8Array[], writable: Uint8Array[] = []): number {
    const head = this.#nextHead++ % this.size;
    const wrap = (bytes: Uint8Array, i: number): GuestBuffer => ({ address: i * 0x1000, bytes });
    this.#pending.push({
      head,
      readable: readable.map(wrap),
      writable: writable.map(wrap),
      readableLength: readable.reduce((n, b) => n + b.length, 0),
      writableLength: writable.reduce((n, b) => n + b.length, 0),
    });
    return head;
  }

  pop(): DescriptorChain | undefined {
    const chain = this.#pending.shift();
    if (chain) this.#popped++;
    return chain;
  }

  /** `pop()` into `out`: each buffer is its own source at offset 0. */
  popInto(out: ChainBuffers): boolean {
    const chain = this.pop();
    if (chain === undefined) return false;
    out.reset(chain.head);
    for (const { bytes, address } of chain.readable) {
      out.add(bytes, 0, bytes.length, address, false);
    }
    for (const { bytes, address } of chain.writable) out.add(bytes, 0, bytes.length, address, true);
    return true;
  }

  /** Indices only: the fake keeps no ring, and chains it hands out are never taken back. */
  saveState(): SplitQueueState {
    return {
      nextAvail: this.#popped & 0xffff,
      nextUsed: this.used.length & 0xffff,
      usedSinceInterruptCheck: this.#interrupts,
      inFlight: [],
    };
  }

  restoreState(state: unknown): void {
    const parsed = parseQueueState(state, this.size, 2 ** 32);
    this.#popped = parsed.nextAvail;
    this.#interrupts = parsed.usedSinceInterruptCheck;
  }

  push(head: number, written: number): void {
    this.used.push({ head, written });
    this.#interrupts++;
  }

  needsInterrupt(): boolean {
    const pending = this.#interrupts > 0;
    this.#interrupts = 0;
    return pending;
  }

  /** Chains not yet popped. */
  get pendingCount(): number {
    return this.#pending.length;
  }
}
