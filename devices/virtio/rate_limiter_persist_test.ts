import assert from "node:assert/strict";
import { RateLimiter } from "./rate_limiter.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

const CONFIG = {
  bandwidth: { size: 1000, oneTimeBurst: 500, refillTimeMs: 1000 },
  ops: { size: 10, refillTimeMs: 100 },
};

function limiterAt(start: number) {
  const time = { now: start };
  return { time, limiter: new RateLimiter(CONFIG, () => time.now) };
}

Deno.test("rate limiter levels round-trip relative to now: time spent saved grants nothing", () => {
  const source = limiterAt(0);
  assert.equal(source.limiter.consume(1200), true); // the burst and 700 of the bucket
  assert.equal(source.limiter.consume(400), false); // refused: counted, retry delay set
  source.time.now = 50; // 50 ms later: 50 bandwidth tokens back
  // Restored on a host whose clock reads a day later and has another origin.
  const target = limiterAt(86_400_000);
  const state = assertRoundTrip(source.limiter, target.limiter);
  assert.equal(state.bandwidth?.sinceRefillMs, 50);
  assert.equal(target.limiter.throttledCount, 1);
  assert.equal(target.limiter.retryDelayMs(), source.limiter.retryDelayMs());
  assert.equal(target.limiter.bandwidth?.available, source.limiter.bandwidth?.available);
  assert.equal(target.limiter.bandwidth?.available, 350, "no refill for the day spent saved");
  assert.equal(target.limiter.consume(400), false);
});

Deno.test("a limiter refuses a state with other buckets than its own", () => {
  const unlimited = new RateLimiter({});
  const saved = viaJson(limiterAt(0).limiter.save());
  assert.throws(
    () => unlimited.restore(saved),
    /state\.bandwidth: this limiter has no such bucket/,
  );
});

Deno.test("rate limiter restore refuses malformed state and changes nothing", () => {
  const source = limiterAt(0);
  source.limiter.consume(1200);
  source.time.now = 10;
  const good = viaJson(source.limiter.save());
  const report = fuzzRestore(limiterAt(100).limiter, good, {
    mustRefuse: [
      { ...good, bandwidth: { ...good.bandwidth, burst: 501 } },
      { ...good, bandwidth: { ...good.bandwidth, budget: 1001 } },
      { ...good, ops: { ...good.ops, sinceRefillMs: -1 } },
      { ...good, ops: null },
    ],
  });
  assert.ok(report.refused > 20, `only ${report.refused} of ${report.tried} refused`);
});
