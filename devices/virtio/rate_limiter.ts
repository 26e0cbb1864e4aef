/**
 * Firecracker-style rate limiting for virtio devices: a token bucket for bytes and one for
 * operations. A device asks `consume(bytes)` before serving a request; when that fails it
 * keeps the request, stops popping, and retries after `retryDelayMs()`.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import {
  type Persistable,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import { MAX_COUNTER, readNullable, readNumber } from "../state_fields.ts";

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
export class RateLimiterConfigError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/**
 * One bucket's level as plain JSON. Time is saved relative to the moment of saving (how
 * long ago the bucket was last refilled), never as a clock reading: a bucket restored
 * later, or on another host whose clock has another origin, refills from where it was
 * instead of granting the time it spent saved as a burst.
 */
export interface TokenBucketState {
  /** Tokens in the bucket at the last refill (negative while in debt). */
  readonly budget: number;
  /** What is left of the one-time burst. */
  readonly burst: number;
  /** Milliseconds between the last refill and the save. */
  readonly sinceRefillMs: number;
}

/** Largest debt a bucket may be in: one request can cost up to 2^32 bytes (a chain's limit). */
const MAX_DEBT = 2 ** 33;

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
  readonly #initialBurst: number;

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
    this.#initialBurst = burst;
    this.#lastRefill = clock();
  }

  /** The bucket's level, with time relative to now (see `TokenBucketState`). */
  save(): TokenBucketState {
    return {
      budget: this.#budget,
      burst: this.#burst,
      sinceRefillMs: Math.max(0, this.#clock() - this.#lastRefill),
    };
  }

  /** Checks a saved level against this bucket's configuration; returns the commit. */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    const budget = readNumber(r, "budget", -MAX_DEBT, this.size);
    const burst = readNumber(r, "burst", 0, this.#initialBurst);
    const sinceRefillMs = readNumber(r, "sinceRefillMs", 0, Number.MAX_SAFE_INTEGER);
    return () => {
      this.#budget = budget;
      this.#burst = burst;
      this.#lastRefill = this.#clock() - sinceRefillMs;
    };
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
  /** The limiter's state for a snapshot (`RateLimiter` has one; fakes may not). */
  save?(): RateLimiterState;
  /** Checks a saved state and returns the function that applies it (see `RateLimiter`). */
  prepareRestore?(state: unknown, path: string): () => void;
}

/** A rate limiter's buckets and throttling counters as plain JSON. */
export interface RateLimiterState extends VersionedState {
  readonly version: 1;
  /** The bandwidth bucket, null when bandwidth is unlimited. */
  readonly bandwidth: TokenBucketState | null;
  /** The operations bucket, null when operations are unlimited. */
  readonly ops: TokenBucketState | null;
  /** The delay the last refusal asked for, in milliseconds. */
  readonly retryDelayMs: number;
  /** Refusals so far. */
  readonly throttled: number;
}

/** Limits a device's bytes and operations; see `parseRateLimit()` for the CLI syntax. */
export class RateLimiter implements DeviceRateLimiter, Persistable<RateLimiterState> {
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

  /** Both buckets' levels (relative to now) and the counters. */
  save(): RateLimiterState {
    return {
      version: 1,
      bandwidth: this.bandwidth?.save() ?? null,
      ops: this.ops?.save() ?? null,
      retryDelayMs: this.#retryDelay,
      throttled: this.#throttled,
    };
  }

  /**
   * Restores a saved state into a limiter built with the same buckets (untrusted: checked
   * first, a bad one throws `StateError` and changes nothing).
   */
  restore(state: unknown, path = "state"): void {
    this.prepareRestore(state, path)();
  }

  /** Validates `state` and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    r.version([1]);
    const buckets = (["bandwidth", "ops"] as const).map((name) => {
      const bucket = this[name];
      const saved = readNullable(r, name, (field) => r.raw(field));
      if ((saved === undefined) !== (bucket === undefined)) {
        throw new StateError(
          r.fieldPath(name),
          bucket === undefined
            ? "this limiter has no such bucket; restore into one built with the same limits"
            : "is null but this limiter has the bucket; restore into one built with the same limits",
        );
      }
      return bucket?.prepareRestore(saved, r.fieldPath(name));
    });
    const retryDelay = readNumber(r, "retryDelayMs", 0, Number.MAX_SAFE_INTEGER);
    const throttled = r.integer("throttled", 0, MAX_COUNTER);
    return () => {
      for (const commit of buckets) commit?.();
      this.#retryDelay = retryDelay;
      this.#throttled = throttled;
    };
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
