/**
 * The serve loop of a single-queue device: takes chains in order, charges each to an
 * optional rate limiter (a throttled chain is held, no new one is taken, and the loop
 * retries from a timer: nothing is lost or reordered), hands it to the device, returns
 * it to the driver and interrupts once per batch. A device that throws or reports failure
 * stops serving until reset; the VMM never sees the exception.
 *
 * @module
 */

import type { DescriptorChain, VirtQueue } from "./queue_types.ts";
import type { DeviceRateLimiter, ScheduleRetry } from "./rate_limiter.ts";
import type { ActivateContext } from "./virtio_device.ts";

/** What the device plugs into the loop. */
export interface ThrottledQueueOptions {
  /** Prefix of failure messages, e.g. "virtio-blk vda". */
  readonly name: string;
  readonly limiter?: DeviceRateLimiter;
  readonly scheduleRetry: ScheduleRetry;
  /** Bytes a chain costs against the limiter. */
  cost(chain: DescriptorChain): number;
  /**
   * Serves one chain: the bytes written into it, or -1 when the device had to fail
   * itself (through `fail()`); the loop then stops.
   */
  handle(chain: DescriptorChain): number;
  /** Called each time a chain is held back by the limiter (for statistics). */
  onThrottled?(): void;
}

/** Serves queue 0 of a device between `activate()` and `reset()`. */
export class ThrottledQueue {
  readonly #options: ThrottledQueueOptions;
  #context?: ActivateContext;
  #queue?: VirtQueue;
  #broken = false;
  #deferred?: DescriptorChain;
  #cancelRetry?: () => void;

  constructor(options: ThrottledQueueOptions) {
    this.#options = options;
  }

  /** The driver set DRIVER_OK: serve what is already queued. */
  activate(context: ActivateContext): void {
    this.#context = context;
    this.#queue = context.queues[0];
    this.#broken = false;
    if (!context.restoring) this.serve(); // a restored device waits for the resume kick
  }

  /** Drops the queue, a held chain and a pending retry. */
  reset(): void {
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    this.#deferred = undefined;
    this.#context = undefined;
    this.#queue = undefined;
    this.#broken = false;
  }

  /** Puts the device in DEVICE_NEEDS_RESET and stops serving until reset. */
  fail(reason: string): void {
    this.#broken = true;
    this.#context?.fail(reason);
  }

  /** Serves chains until the queue is empty or the limiter says wait. */
  serve(): void {
    const queue = this.#queue;
    const context = this.#context;
    if (!queue || !context || this.#broken || this.#cancelRetry) return;
    const { limiter } = this.#options;
    let served = false;
    try {
      for (;;) {
        const chain = this.#deferred ?? queue.pop();
        this.#deferred = undefined;
        if (!chain) break;
        if (limiter && !limiter.consume(this.#options.cost(chain))) {
          this.#options.onThrottled?.();
          this.#deferred = chain;
          this.#cancelRetry = this.#options.scheduleRetry(() => {
            this.#cancelRetry = undefined;
            this.serve();
          }, limiter.retryDelayMs());
          break;
        }
        const written = this.#options.handle(chain);
        if (written < 0) return;
        queue.push(chain.head, written);
        served = true;
      }
    } catch (error) {
      // A malformed chain (VirtQueueError) or a bug: the device stops, the VMM does not.
      this.fail(`${this.#options.name}: ${(error as Error).message}`);
      return;
    }
    if (served && queue.needsInterrupt()) context.interrupt.usedBuffer(0);
  }

  /** The negotiated features, or none before activation. */
  get features(): bigint {
    return this.#context?.features ?? 0n;
  }

  /** Tells the driver the device configuration changed (when active). */
  configChanged(): void {
    this.#context?.interrupt.configChanged();
  }
}
