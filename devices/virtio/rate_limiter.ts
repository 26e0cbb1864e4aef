/**
 * Firecracker-style rate limiting for virtio devices: a token bucket for bytes and one for
 * operations. A device asks `consume(bytes)` before serving a request; when that fails it
 * keeps the request, stops popping, and retries after `retryDelayMs()`.
 *
 * @module
 */

/** Milliseconds from an arbitrary origin; injectable so tests control time. */
export type Clock = () => number;

/** One bucket's settings, as in Firecracker's API. */
export interface TokenBucketConfig {
  /** Bucket capacity in tokens (bytes or operations); refilled over `refillTimeMs`. */
  size: number;
  /** Extra tokens available once at start, spent before the bucket. */
  oneTimeBurst?: number;
  /** Milliseconds to refill an empty bucket completely. */
  refillTimeMs: number;
}

/** Thrown for a bucket or limiter specification that makes no sense. */
export class RateLimiterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RateLimiterConfigError";
  }
}

/**
 * A token bucket refilled continuously at `size / refillTimeMs` tokens per millisecond.
 * A request larger than the bucket is allowed when the bucket is full and leaves it in debt,
 * so oversized requests are slowed to the configured rate rather than refused forever.
 */
export class TokenBucket {
  readonly size: number;
  readonly refillTimeMs: number;
  readonly #clock: Clock;
  #budget: number;
  #burst: number;
  #lastRefill: number;

  constructor(config: TokenBucketConfig, clock: Clock = () => performance.now()) {
    const { size, refillTimeMs } = config;
    const burst = config.oneTimeBurst ?? 0;
    if (!(Number.isFinite(size) && size > 0)) {
      throw new RateLimiterConfigError(`Token bucket size must be a positive number, not ${size}`);
    }
    if (!(Number.isFinite(refillTimeMs) && refillTimeMs > 0)) {
      throw new RateLimiterConfigError(
        `Token bucket refill time must be a positive number of milliseconds, not ${refillTimeMs}`,
      );
    }
    if (!(Number.isFinite(burst) && burst >= 0)) {
      throw new RateLimiterConfigError(`One-time burst must be zero or more, not ${burst}`);
    }
    this.size = size;
    this.refillTimeMs = refillTimeMs;
    this.#clock = clock;
    this.#budget = size;
    this.#burst = burst;
    this.#lastRefill = clock();
  }

  /** Tokens available now (burst plus budget; negative while in debt). */
  get available(): number {
    this.#refill();
    return this.#burst + this.#budget;
  }

  /** Takes `n` tokens if they are there (all or nothing). */
  consume(n: number): boolean {
    this.#refill();
    if (n <= this.#burst) {
      this.#burst -= n;
      return true;
    }
    const rest = n - this.#burst;
    if (rest <= this.#budget || (rest > this.size && this.#budget >= this.size)) {
      this.#burst = 0;
      this.#budget -= rest;
      return true;
    }
    return false;
  }

  /** Gives back `n` tokens taken by `consume` (when a partner bucket refused). */
  replenish(n: number): void {
    this.#budget = Math.min(this.size, this.#budget + n);
  }

  /** Milliseconds until `consume(n)` can succeed (0 if it can now). */
  timeUntil(n: number): number {
    this.#refill();
    const needed = Math.min(n - this.#burst, this.size);
    if (needed <= this.#budget) return 0;
    return ((needed - this.#budget) * this.refillTimeMs) / this.size;
  }

  #refill(): void {
    const now = this.#clock();
    const elapsed = now - this.#lastRefill;
    if (elapsed <= 0) return;
    this.#lastRefill = now;
    this.#budget = Math.min(this.size, this.#budget + (elapsed * this.size) / this.refillTimeMs);
  }
}

/** Settings of a `RateLimiter`; either bucket may be absent (unlimited). */
export interface RateLimiterConfig {
  bandwidth?: TokenBucketConfig;
  ops?: TokenBucketConfig;
}

/**
 * What a device needs of a rate limiter: `RateLimiter` implements it, tests fake it.
 * Devices that are throttled hold the request, stop taking new ones and retry after
 * `retryDelayMs()`.
 */
export interface DeviceRateLimiter {
  /** Takes one operation of `bytes` bytes; false (nothing taken) when throttled. */
  consume(bytes: number): boolean;
  /** Milliseconds after which `consume` may succeed again. */
  retryDelayMs(): number;
}

/** Limits a device's bytes and operations; see `parseRateLimit()` for the CLI syntax. */
export class RateLimiter implements DeviceRateLimiter {
  readonly bandwidth?: TokenBucket;
  readonly ops?: TokenBucket;
  #retryDelay = 0;
  #throttled = 0;

  constructor(config: RateLimiterConfig, clock: Clock = () => performance.now()) {
    if (config.bandwidth) this.bandwidth = new TokenBucket(config.bandwidth, clock);
    if (config.ops) this.ops = new TokenBucket(config.ops, clock);
  }

  /**
   * Takes one operation of `bytes` bytes; false (nothing taken) when either bucket is
   * short, and `retryDelayMs()` then says when to try again.
   */
  consume(bytes: number): boolean {
    if (this.ops && !this.ops.consume(1)) {
      this.#refuse(bytes);
      return false;
    }
    if (this.bandwidth && bytes > 0 && !this.bandwidth.consume(bytes)) {
      this.ops?.replenish(1);
      this.#refuse(bytes);
      return false;
    }
    return true;
  }

  /** Milliseconds after which the last refused `consume` may succeed (at least 1). */
  retryDelayMs(): number {
    return Math.max(1, Math.ceil(this.#retryDelay));
  }

  /** How many times `consume` refused. */
  get throttledCount(): number {
    return this.#throttled;
  }

  #refuse(bytes: number): void {
    this.#throttled++;
    this.#retryDelay = Math.max(this.ops?.timeUntil(1) ?? 0, this.bandwidth?.timeUntil(bytes) ?? 0);
  }
}

/**
 * Runs `callback` after `delayMs` and returns a function that cancels it. Devices take one
 * so tests can drive retries by hand; `retryWithTimeout` is the real one.
 */
export type ScheduleRetry = (callback: () => void, delayMs: number) => () => void;

/** A `ScheduleRetry` on the event loop's timers. */
export const retryWithTimeout: ScheduleRetry = (callback, delayMs) => {
  const id = setTimeout(callback, delayMs);
  return () => clearTimeout(id);
};
