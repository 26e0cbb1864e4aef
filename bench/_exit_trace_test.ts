import assert from "node:assert/strict";
import { summariseWindows, type TracePoint, windowCosts } from "./_exit_trace.ts";

// 1000 exits per 10 ms (10 µs/exit), except a disturbed stretch at 30 µs/exit.
const TRACE: TracePoint[] = [
  [0.00, 0],
  [0.01, 1000],
  [0.02, 2000],
  [0.05, 3000],
  [0.06, 4000],
  [0.07, 5000],
];

Deno.test("windowCosts() gives µs per exit over windows of at least minExits exits", () => {
  const costs = windowCosts(TRACE, 2000);
  assert.equal(costs.length, 4);
  assert.ok(Math.abs(costs[0] - 10) < 1e-9);
  assert.ok(Math.abs(costs[1] - 20) < 1e-9);
  assert.ok(Math.abs(costs[3] - 10) < 1e-9);
});

Deno.test("windowCosts() is empty when the trace spans fewer than minExits exits", () => {
  assert.deepEqual(windowCosts(TRACE, 6000), []);
});

Deno.test("summariseWindows() finds the undisturbed window across traces", () => {
  const slow: TracePoint[] = [[0, 0], [0.05, 2000]];
  const summary = summariseWindows([slow, TRACE], 2000)!;
  assert.ok(Math.abs(summary.fastest - 10) < 1e-9);
  assert.equal(summary.windows, 5);
  assert.equal(summariseWindows([slow], 5000), undefined);
});
