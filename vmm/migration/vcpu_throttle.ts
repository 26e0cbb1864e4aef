/**
 * Auto-converge's brake: a guest that dirties memory faster than the link carries it is
 * made to run less. Every period (100 ms) the vCPUs run for (100 - p) % of it and are
 * paused for the rest, as QEMU's cpu-throttle sleeps its vCPU threads for a share of each
 * time slice. Pausing goes through the machine's own pause (a kick and a park), which
 * costs well under a millisecond here, so the period stays coarse enough to keep that
 * cost small and fine enough that the guest's timer keeps ticking.
 *
 * @module
 */

/** What the throttle needs of the machine. */
export interface Throttleable {
  pause(): Promise<void>;
  resume(): void;
}

/** The period one run + pause cycle takes (ms). */
export const THROTTLE_PERIOD_MS = 100;

/** The vCPU throttle of one migration source. */
export class VcpuThrottle {
  readonly #target: Throttleable;
  readonly #periodMs: number;
  #percent = 0;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  constructor(target: Throttleable, periodMs = THROTTLE_PERIOD_MS) {
    this.#target = target;
    this.#periodMs = periodMs;
  }

  /** The share of each period the vCPUs are kept paused (0: not throttled). */
  get percent(): number {
    return this.#percent;
  }

  /** Sets the throttle (0 to 99 %); 0 lets the vCPUs run freely again at once. */
  set(percent: number): void {
    const clamped = Math.max(0, Math.min(99, Math.round(Number.isFinite(percent) ? percent : 0)));
    this.#percent = clamped;
    if (clamped === 0) {
      this.#wake?.();
      return;
    }
    this.#loop ??= this.#run().finally(() => {
      this.#loop = null;
    });
  }

  /** Stops throttling; resolves once the vCPUs run (the current cycle's pause ended). */
  async stop(): Promise<void> {
    this.set(0);
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#percent > 0) {
      await this.#sleep((this.#periodMs * (100 - this.#percent)) / 100);
      if (this.#percent === 0) return;
      await this.#target.pause();
      try {
        await this.#sleep((this.#periodMs * this.#percent) / 100);
      } finally {
        this.#target.resume();
      }
    }
  }

  /** Sleeps `ms`, or less if `set(0)` wakes it. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => done();
      this.#wake = wake;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).then(() => {
      this.#wake = null;
    });
  }
}
