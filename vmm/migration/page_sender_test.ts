import assert from "node:assert/strict";
import { Pacer, type PacerClock } from "./page_sender.ts";

/** A clock that only moves when slept on or told to. */
class FakeClock implements PacerClock {
  time = 0;
  slept: number[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

Deno.test("Pacer holds writes to the rate", async () => {
  const clock = new FakeClock();
  const pacer = new Pacer(1_000_000, clock); // 1 MB/s: 1000 bytes per ms
  for (let i = 0; i < 4; i++) await pacer.account(100_000);
  assert.equal(clock.time, 400);
});

Deno.test("Pacer gives no credit for time spent not sending (a round after a long START)", async () => {
  const clock = new FakeClock();
  const pacer = new Pacer(1_000_000, clock);
  await pacer.account(1000); // START
  clock.time += 3000; // the destination starts its VMM
  const from = clock.time;
  for (let i = 0; i < 10; i++) await pacer.account(200_000);
  // 2 MB at 1 MB/s: 2 s, not a burst paid for by the 3 s of waiting.
  assert.equal(clock.time - from, 2000);
});

Deno.test("Pacer does not wait without a limit", async () => {
  const clock = new FakeClock();
  const pacer = new Pacer(0, clock);
  await pacer.account(1e9);
  assert.deepEqual(clock.slept, []);
});
