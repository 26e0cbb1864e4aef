import assert from "node:assert/strict";
import { RateLimiter, RateLimiterConfigError, TokenBucket } from "./rate_limiter.ts";
import { parseRateLimit } from "./rate_limit_spec.ts";

function fakeClock(): { now: number; clock: () => number } {
  const state = { now: 0, clock: () => state.now };
  return state;
}

Deno.test("a token bucket refills at size per refill time", () => {
  const time = fakeClock();
  const bucket = new TokenBucket({ size: 1000, refillTimeMs: 1000 }, time.clock);
  assert.equal(bucket.consume(1000), true);
  assert.equal(bucket.consume(1), false);
  assert.equal(bucket.timeUntil(100), 100);
  time.now = 99;
  assert.equal(bucket.consume(100), false);
  time.now = 100;
  assert.equal(bucket.consume(100), true);
  time.now = 10_000;
  assert.equal(bucket.available, 1000, "the budget never exceeds the size");
});

Deno.test("the one-time burst is spent first and never refilled", () => {
  const time = fakeClock();
  const bucket = new TokenBucket({ size: 100, oneTimeBurst: 500, refillTimeMs: 1000 }, time.clock);
  assert.equal(bucket.consume(550), true);
  assert.equal(bucket.available, 50);
  time.now = 5000;
  assert.equal(bucket.available, 100);
});

Deno.test("a request larger than the bucket passes when full and leaves debt", () => {
  const time = fakeClock();
  const bucket = new TokenBucket({ size: 100, refillTimeMs: 1000 }, time.clock);
  assert.equal(bucket.consume(300), true);
  assert.equal(bucket.available, -200);
  assert.equal(bucket.consume(1), false);
  assert.equal(bucket.timeUntil(1), 2010);
  time.now = 2010;
  assert.equal(bucket.consume(1), true);
});

Deno.test("RateLimiter takes nothing when one bucket refuses", () => {
  const time = fakeClock();
  const limiter = new RateLimiter({
    bandwidth: { size: 4096, refillTimeMs: 1000 },
    ops: { size: 10, refillTimeMs: 1000 },
  }, time.clock);
  assert.equal(limiter.consume(4096), true);
  assert.equal(limiter.consume(512), false);
  assert.equal(limiter.ops!.available, 9, "the operation was given back");
  assert.equal(limiter.retryDelayMs(), 125);
  assert.equal(limiter.throttledCount, 1);
  time.now = 125;
  assert.equal(limiter.consume(512), true);
});

Deno.test("RateLimiter limits operations on their own", () => {
  const time = fakeClock();
  const limiter = new RateLimiter({ ops: { size: 2, refillTimeMs: 100 } }, time.clock);
  assert.equal(limiter.consume(1 << 20), true);
  assert.equal(limiter.consume(1 << 20), true);
  assert.equal(limiter.consume(0), false);
  assert.equal(limiter.retryDelayMs(), 50);
});

Deno.test("TokenBucket rejects nonsense settings", () => {
  assert.throws(() => new TokenBucket({ size: 0, refillTimeMs: 1 }), RateLimiterConfigError);
  assert.throws(() => new TokenBucket({ size: 1, refillTimeMs: 0 }), RateLimiterConfigError);
  assert.throws(
    () => new TokenBucket({ size: 1, refillTimeMs: 1, oneTimeBurst: -1 }),
    RateLimiterConfigError,
  );
});

Deno.test("parseRateLimit() reads the key=value form with binary suffixes", () => {
  assert.deepEqual(parseRateLimit("bw=10M,ops=1000"), {
    bandwidth: { size: 10 * 1024 * 1024, refillTimeMs: 1000 },
    ops: { size: 1000, refillTimeMs: 1000 },
  });
  assert.deepEqual(parseRateLimit("bw=512k,bw_burst=1G"), {
    bandwidth: { size: 512 * 1024, refillTimeMs: 1000, oneTimeBurst: 1024 ** 3 },
  });
});

Deno.test("parseRateLimit() reads Firecracker's JSON shape", () => {
  assert.deepEqual(
    parseRateLimit(
      '{"bandwidth":{"size":1000,"one_time_burst":50,"refill_time":100},"ops":{"size":5,"refill_time":1000}}',
    ),
    {
      bandwidth: { size: 1000, refillTimeMs: 100, oneTimeBurst: 50 },
      ops: { size: 5, refillTimeMs: 1000 },
    },
  );
});

Deno.test("parseRateLimit() explains what is wrong", () => {
  assert.throws(() => parseRateLimit("bw=fast"), /bw=fast is not a positive amount/);
  assert.throws(() => parseRateLimit("iops=5"), /unknown key "iops"/);
  assert.throws(() => parseRateLimit("ops_burst=5"), /ops_burst needs ops/);
  assert.throws(() => parseRateLimit("bw"), /expected key=value/);
  assert.throws(() => parseRateLimit('{"bandwidth":{"size":1}}'), /refill_time must be/);
  assert.throws(() => parseRateLimit('{"bw":1}'), /unknown key "bw"/);
  assert.throws(() => parseRateLimit("{"), /JSON is invalid/);
});
