import assert from "node:assert/strict";
import { CouldNotMeasureError } from "./_support.ts";
import { microsecondsPerExit } from "./_exit_runners.ts";

Deno.test("microsecondsPerExit() divides the extra time by the extra exits", () => {
  const perExit = microsecondsPerExit(
    { seconds: 0.5, cpuSeconds: 0.4, exits: 10_100, trace: [] },
    { seconds: 0.8, cpuSeconds: 0.6, exits: 40_100, trace: [] },
  );
  assert.ok(Math.abs(perExit.wall - 10) < 1e-9);
  assert.ok(Math.abs(perExit.cpu - 20 / 3) < 1e-9);
});

Deno.test("microsecondsPerExit() refuses runs whose exit counts do not grow", () => {
  const run = { seconds: 1, cpuSeconds: 1, exits: 100, trace: [] };
  assert.throws(() => microsecondsPerExit(run, run), CouldNotMeasureError);
});
