/**
 * The command-line and domain-definition syntax of device rate limits.
 *
 * Two forms are accepted:
 * - `bw=RATE,ops=RATE[,bw_burst=SIZE][,ops_burst=N]`: bytes per second (suffixes K, M, G,
 *   binary: `10M` is 10 MiB/s) and operations per second, with optional one-time bursts.
 *   Each rate becomes a bucket of one second's worth of tokens refilled over 1000 ms.
 * - Firecracker's JSON shape: `{"bandwidth": {"size": N, "one_time_burst": N,
 *   "refill_time": MS}, "ops": {...}}` (sizes in bytes or operations, time in ms).
 *
 * @example
 * ```ts
 * parseRateLimit("bw=10M,ops=1000");
 * // { bandwidth: { size: 10485760, refillTimeMs: 1000 }, ops: { size: 1000, refillTimeMs: 1000 } }
 * ```
 *
 * @module
 */

import { RateLimiterConfigError } from "./rate_limiter.ts";
import type { RateLimiterConfig, TokenBucketConfig } from "./rate_limiter.ts";

const SUFFIXES: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parses a rate-limit specification (see the module doc); throws `RateLimiterConfigError`. */
export function parseRateLimit(spec: string): RateLimiterConfig {
  const text = spec.trim();
  if (text.startsWith("{")) return parseFirecrackerJson(text);
  const config: RateLimiterConfig = {};
  const bursts: { bw?: number; ops?: number } = {};
  for (const part of text.split(",")) {
    const [key, value, ...extra] = part.split("=");
    if (value === undefined || extra.length > 0) {
      throw new RateLimiterConfigError(
        `Rate limit "${spec}": expected key=value items such as bw=10M,ops=1000, got "${part}"`,
      );
    }
    const amount = parseAmount(spec, key.trim(), value.trim());
    switch (key.trim()) {
      case "bw":
        config.bandwidth = { size: amount, refillTimeMs: 1000 };
        break;
      case "ops":
        config.ops = { size: amount, refillTimeMs: 1000 };
        break;
      case "bw_burst":
        bursts.bw = amount;
        break;
      case "ops_burst":
        bursts.ops = amount;
        break;
      default:
        throw new RateLimiterConfigError(
          `Rate limit "${spec}": unknown key "${key}"; use bw, ops, bw_burst or ops_burst`,
        );
    }
  }
  applyBurst(spec, config.bandwidth, bursts.bw, "bw");
  applyBurst(spec, config.ops, bursts.ops, "ops");
  if (!config.bandwidth && !config.ops) {
    throw new RateLimiterConfigError(`Rate limit "${spec}" sets neither bw nor ops`);
  }
  return config;
}

function applyBurst(
  spec: string,
  bucket: TokenBucketConfig | undefined,
  burst: number | undefined,
  name: string,
): void {
  if (burst === undefined) return;
  if (!bucket) {
    throw new RateLimiterConfigError(`Rate limit "${spec}": ${name}_burst needs ${name}`);
  }
  bucket.oneTimeBurst = burst;
}

function parseAmount(spec: string, key: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(value);
  const amount = match ? Number(match[1]) * SUFFIXES[match[2].toUpperCase()] : NaN;
  if (!match || !(amount > 0 || key.endsWith("_burst"))) {
    throw new RateLimiterConfigError(
      `Rate limit "${spec}": ${key}=${value} is not a positive amount (e.g. 1000, 512K, 10M)`,
    );
  }
  return Math.floor(amount);
}

function parseFirecrackerJson(text: string): RateLimiterConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RateLimiterConfigError(`Rate limit JSON is invalid: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RateLimiterConfigError(`Rate limit JSON must be an object with bandwidth and/or ops`);
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (key !== "bandwidth" && key !== "ops") {
      throw new RateLimiterConfigError(
        `Rate limit JSON has an unknown key "${key}"; use bandwidth and ops`,
      );
    }
  }
  const config: RateLimiterConfig = {};
  if (object.bandwidth != null) config.bandwidth = jsonBucket("bandwidth", object.bandwidth);
  if (object.ops != null) config.ops = jsonBucket("ops", object.ops);
  return config;
}

function jsonBucket(name: string, value: unknown): TokenBucketConfig {
  const bucket = value as Record<string, unknown>;
  const number = (key: string, required: boolean): number | undefined => {
    const field = bucket?.[key];
    if (field === undefined && !required) return undefined;
    if (typeof field !== "number" || !Number.isFinite(field) || field < 0) {
      throw new RateLimiterConfigError(
        `Rate limit JSON: ${name}.${key} must be a number of ${
          key === "refill_time" ? "milliseconds" : "tokens"
        }`,
      );
    }
    return field;
  };
  const size = number("size", true)!;
  const refillTimeMs = number("refill_time", true)!;
  const oneTimeBurst = number("one_time_burst", false);
  return oneTimeBurst === undefined ? { size, refillTimeMs } : { size, refillTimeMs, oneTimeBurst };
}
