import assert from "node:assert/strict";
import { Command } from "../../vmm/migration/protocol.ts";
import { describeProgress, ProgressTracker } from "./progress.ts";

Deno.test("ProgressTracker times rounds between DIRTY_ROUND frames", () => {
  let now = 0;
  const tracker = new ProgressTracker("outgoing", "10.0.0.2:4789", () => now);
  assert.equal(tracker.current.phase, "connecting");
  assert.equal(describeProgress(tracker.current), "connecting to 10.0.0.2:4789");
  // Round 0: 8 MiB of pages in one second.
  now = 1000;
  assert.equal(
    tracker.update({
      iteration: 0,
      dirtyBytes: 0,
      throttlePercent: 0,
      bytes: 8 << 20,
      command: Command.MEMORY,
    }),
    false,
  );
  assert.equal(tracker.current.phase, "copying");
  assert.match(describeProgress(tracker.current), /^first pass, 8\.0 MiB sent$/);
  // Its end: 2 MiB dirtied meanwhile.
  assert.equal(
    tracker.update({
      iteration: 1,
      dirtyBytes: 2 << 20,
      throttlePercent: 0,
      bytes: (8 << 20) + 32,
      command: Command.DIRTY_ROUND,
    }),
    true,
  );
  const round = tracker.current;
  assert.equal(round.iteration, 1);
  assert.equal(round.remainingBytes, 2 << 20);
  assert.equal(round.dirtyRate, 2 << 20);
  assert.equal(round.bandwidth, (8 << 20) + 32);
  assert.equal(round.expectedDowntimeMs, 250);
  assert.equal(
    describeProgress(round),
    "iteration 1, 2.0 MiB left, dirtied at 2.0 MiB/s, link 8.0 MiB/s, downtime ~250 ms",
  );
  // The same round announced again is no new round; STATE is the switch-over.
  assert.equal(
    tracker.update({ ...round, dirtyBytes: 1, bytes: 9 << 20, command: Command.DIRTY_ROUND }),
    false,
  );
  // A throttled round says so.
  now = 2000;
  tracker.update({
    iteration: 2,
    dirtyBytes: 1 << 20,
    throttlePercent: 30,
    bytes: 9 << 20,
    command: Command.DIRTY_ROUND,
  });
  assert.equal(tracker.current.throttlePercent, 30);
  assert.match(describeProgress(tracker.current), /, guest throttled 30 %$/);
  tracker.update({
    iteration: 2,
    dirtyBytes: 0,
    throttlePercent: 30,
    bytes: 10 << 20,
    command: Command.STATE,
  });
  assert.equal(tracker.current.phase, "switch-over");
  assert.equal(tracker.current.bytesSent, 10 << 20);
  assert.match(describeProgress(tracker.current), /^switch-over after 2 rounds, 10\.0 MiB sent$/);
});
