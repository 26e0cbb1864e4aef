import assert from "node:assert/strict";
import { VcpuThrottle } from "./vcpu_throttle.ts";

/** A stand-in machine that records how long it was paused. */
class FakeMachine {
  paused = false;
  pausedMs = 0;
  #since = 0;

  pause(): Promise<void> {
    assert.equal(this.paused, false, "paused twice");
    this.paused = true;
    this.#since = performance.now();
    return Promise.resolve();
  }

  resume(): void {
    assert.equal(this.paused, true, "resumed while running");
    this.paused = false;
    this.pausedMs += performance.now() - this.#since;
  }
}

Deno.test("VcpuThrottle keeps the vCPUs paused for its share of each period", async () => {
  const machine = new FakeMachine();
  const throttle = new VcpuThrottle(machine, 20);
  throttle.set(75);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, 400));
  await throttle.stop();
  const share = machine.pausedMs / (performance.now() - started);
  assert.equal(machine.paused, false, "stop() leaves the vCPUs running");
  assert.ok(share > 0.45 && share < 0.95, `paused ${(share * 100).toFixed(0)} % of the time`);
  assert.equal(throttle.percent, 0);
});

Deno.test("VcpuThrottle clamps to 0..99 and 0 never pauses", async () => {
  const machine = new FakeMachine();
  const throttle = new VcpuThrottle(machine, 10);
  throttle.set(0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(machine.pausedMs, 0);
  throttle.set(250);
  assert.equal(throttle.percent, 99);
  throttle.set(Number.NaN);
  assert.equal(throttle.percent, 0);
  throttle.set(-5);
  assert.equal(throttle.percent, 0);
  await throttle.stop();
  assert.equal(machine.paused, false);
});
