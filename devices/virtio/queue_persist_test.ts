import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { SplitQueue } from "./queue.ts";
import { VirtQueueError } from "./queue_types.ts";
import { type DriverBuffer, SplitQueueDriver } from "./testing/driver_harness.ts";

function setUp(startIndex = 0) {
  const memory = GuestMemory.ofSize(1 << 20);
  const driver = new SplitQueueDriver(memory, { base: 0x1000, size: 8, startIndex });
  const queue = SplitQueue.restore(memory, driver.config, {
    nextAvail: startIndex,
    nextUsed: startIndex,
    usedSinceInterruptCheck: 0,
    inFlight: [],
  });
  return { memory, driver, queue };
}

const request = (n: number): DriverBuffer[] => [
  { address: 0x80000 + n * 0x100, length: 16 },
  { address: 0x90000 + n * 0x100, length: 8, writable: true },
];

Deno.test("saveState() hands the last chains popped back by rewinding nextAvail", () => {
  const { memory, driver, queue } = setUp(0xfffe); // the rewind crosses the 16-bit wrap
  for (let n = 0; n < 4; n++) driver.submit(request(n));
  const first = queue.pop()!;
  queue.push(first.head, 0);
  queue.pop();
  queue.pop(); // two chains held, as a throttled device or net's receive buffers would
  const state = queue.saveState();
  assert.deepEqual(state, {
    nextAvail: 0xffff,
    nextUsed: 0xffff,
    usedSinceInterruptCheck: 1,
    inFlight: [],
  });
  assert.equal(queue.queueState().inFlight.length, 2, "saving changed nothing");
  const restored = SplitQueue.restore(memory, driver.config, JSON.parse(JSON.stringify(state)));
  const again = [restored.pop()!, restored.pop()!, restored.pop()!];
  assert.equal(restored.pop(), undefined);
  for (const chain of again) restored.push(chain.head, 8);
  assert.deepEqual(driver.takeUsed().length, 4, "each request used exactly once");
});

Deno.test("saveState() refuses a held chain that is not among the last popped", () => {
  const { driver, queue } = setUp();
  driver.submit(request(0));
  driver.submit(request(1));
  const first = queue.pop()!;
  const second = queue.pop()!;
  queue.push(second.head, 0); // completed out of order: the first is still held
  assert.throws(
    () => queue.saveState(),
    (error: unknown) =>
      error instanceof VirtQueueError && new RegExp(`chain ${first.head}`).test(error.message),
  );
});

Deno.test("restoreState() is all or nothing", () => {
  const { driver, queue } = setUp();
  driver.submit(request(0));
  queue.pop();
  const before = queue.queueState();
  assert.throws(() => queue.restoreState({ ...before, nextUsed: 70000 }), VirtQueueError);
  assert.deepEqual(queue.queueState(), before);
  queue.restoreState({ nextAvail: 0, nextUsed: 0, usedSinceInterruptCheck: 0, inFlight: [] });
  assert.deepEqual(queue.queueState().inFlight, [], "in-flight chains are replaced, not merged");
});
