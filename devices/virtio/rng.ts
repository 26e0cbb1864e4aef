/**
 * virtio-rng (virtio 1.2, 5.4): one queue whose device-writable buffers are filled from
 * the host's getrandom(2), optionally rate limited (bytes and requests).
 *
 * @module
 */

import { errno } from "../../ffi/libc.ts";
import { getrandom } from "../../ffi/fs.ts";
import { EINTR, SyscallError } from "../../ffi/errno.ts";
import type { DescriptorChain } from "./queue_types.ts";
import { ThrottledQueue } from "./throttled_queue.ts";
import { type DeviceRateLimiter, retryWithTimeout, type ScheduleRetry } from "./rate_limiter.ts";
import { type ActivateContext, VIRTIO_F, VIRTIO_ID, type VirtioDevice } from "./virtio_device.ts";
import { StateReader, type VersionedState } from "../../common/persist.ts";
import { MAX_COUNTER } from "../state_fields.ts";
import { limiterState, prepareLimiter } from "./device_persist.ts";
import type { RateLimiterState } from "./rate_limiter.ts";

/** virtio-rng's own state (its queue is the transport's). */
export interface VirtioRngState extends VersionedState {
  readonly version: 1;
  /** Random bytes handed to the guest so far. */
  readonly bytesServed: number;
  /** The rate limiter's buckets, null without one. */
  readonly rateLimiter: RateLimiterState | null;
}

/** What virtio-rng needs of a rate limiter. */
export type RngRateLimiter = DeviceRateLimiter;

/** Options of a virtio-rng device. */
export interface VirtioRngOptions {
  /** Queue size (a power of two); 256 by default. */
  queueSize?: number;
  rateLimiter?: RngRateLimiter;
  /** How throttled requests are retried; real timers by default. */
  scheduleRetry?: ScheduleRetry;
  /** The entropy source; getrandom(2) by default. Fills all of `bytes`. */
  fill?: (bytes: Uint8Array) => void;
}

/** Fills `bytes` from getrandom(2), looping over partial results and EINTR. */
export function fillRandom(bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    const rest = bytes.subarray(done);
    const n = getrandom(rest);
    if (n > 0) {
      done += n;
      continue;
    }
    const code = errno();
    if (n < 0 && code !== EINTR) throw new SyscallError("getrandom", code);
  }
}

/** The virtio entropy device. */
export class VirtioRng implements VirtioDevice {
  readonly type = VIRTIO_ID.RNG;
  readonly name = "virtio-rng";
  readonly queueSizes: readonly number[];
  readonly features = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_EVENT_IDX | VIRTIO_F.RING_INDIRECT_DESC;
  readonly configSize = 0;
  readonly #fill: (bytes: Uint8Array) => void;
  readonly #queue: ThrottledQueue;
  readonly #limiter?: RngRateLimiter;
  #bytesServed = 0;

  constructor(options: VirtioRngOptions = {}) {
    this.queueSizes = [options.queueSize ?? 256];
    this.#fill = options.fill ?? fillRandom;
    this.#limiter = options.rateLimiter;
    this.#queue = new ThrottledQueue({
      name: this.name,
      limiter: options.rateLimiter,
      scheduleRetry: options.scheduleRetry ?? retryWithTimeout,
      cost: (chain) => chain.writableLength,
      handle: (chain) => this.#handle(chain),
    });
  }

  /** Random bytes handed to the guest so far. */
  get bytesServed(): number {
    return this.#bytesServed;
  }

  /** The counter and the rate limiter, for the transport's state. */
  save(): VirtioRngState {
    return { version: 1, bytesServed: this.#bytesServed, rateLimiter: limiterState(this.#limiter) };
  }

  /** Checks a saved state (untrusted) and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    r.version([1]);
    const bytesServed = r.integer("bytesServed", 0, MAX_COUNTER);
    const commitLimiter = prepareLimiter(r, "rateLimiter", this.#limiter);
    return () => {
      this.#bytesServed = bytesServed;
      commitLimiter();
    };
  }

  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  writeConfig(_offset: number, _data: Uint8Array): void {}

  activate(context: ActivateContext): void {
    this.#queue.activate(context);
  }

  notify(queueIndex: number): void {
    if (queueIndex === 0) this.#queue.serve();
  }

  reset(): void {
    this.#queue.reset();
  }

  close(): void {
    this.reset();
  }

  /** Fills the chain's writable buffers; device-readable ones carry nothing here. */
  #handle(chain: DescriptorChain): number {
    for (const buffer of chain.writable) this.#fill(buffer.bytes);
    this.#bytesServed += chain.writableLength;
    return chain.writableLength;
  }
}
