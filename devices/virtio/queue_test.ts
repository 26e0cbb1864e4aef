import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { createSplitQueue, SplitQueue, type SplitQueueOptions } from "./queue.ts";
import { VirtQueueError } from "./queue_types.ts";
import { type DriverBuffer, SplitQueueDriver } from "./testing/driver_harness.ts";
import { VIRTIO_F } from "./virtio_device.ts";

const QUEUE_BASE = 0x1000;
const DATA = 0x10_0000;

function setUp(
  options: { size?: number; eventIdx?: boolean; indirectEntries?: number; startIndex?: number } =
    {},
  queueOptions: SplitQueueOptions = {},
) {
  const memory = GuestMemory.ofSize(4 << 20);
  const driver = new SplitQueueDriver(memory, { base: QUEUE_BASE, size: 16, ...options });
  const queue = new SplitQueue(memory, driver.config, {
    features: driver.features,
    ...queueOptions,
  });
  return { memory, driver, queue };
}

const request: DriverBuffer[] = [
  { address: DATA, length: 16 },
  { address: DATA + 0x1000, length: 512 },
  { address: DATA + 0x2000, length: 1, writable: true },
];

Deno.test("pop() returns undefined while the driver has published nothing", () => {
  const { driver, queue } = setUp();
  assert.equal(queue.pop(), undefined);
  driver.add(request); // added but not published
  assert.equal(queue.pop(), undefined);
  assert.equal(queue.availableCount(), 0);
});

Deno.test("pop() returns a chain split into readable then writable live views", () => {
  const { memory, driver, queue } = setUp();
  memory.write(DATA, Uint8Array.of(1, 2, 3));
  const head = driver.submit(request);
  assert.equal(queue.availableCount(), 1);
  const chain = queue.pop()!;
  assert.equal(chain.head, head);
  assert.deepEqual(chain.readable.map((b) => [b.address, b.bytes.length]), [
    [DATA, 16],
    [DATA + 0x1000, 512],
  ]);
  assert.deepEqual(chain.writable.map((b) => [b.address, b.bytes.length]), [[DATA + 0x2000, 1]]);
  assert.equal(chain.readableLength, 528);
  assert.equal(chain.writableLength, 1);
  assert.deepEqual([...chain.readable[0].bytes.subarray(0, 3)], [1, 2, 3]);
  chain.writable[0].bytes[0] = 0xab;
  assert.equal(memory.readU8(DATA + 0x2000), 0xab);
  assert.equal(queue.pop(), undefined);
});

Deno.test("pop() accepts chains that use every descriptor of the table or indirect table", () => {
  const { driver, queue } = setUp({ indirectEntries: 15 });
  const buffers = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ address: DATA + i * 64, length: 64, writable: i >= 8 }));
  const head = driver.submit(buffers(16));
  const chain = queue.pop()!;
  assert.deepEqual([chain.readable.length, chain.writable.length], [8, 8]);
  queue.push(head, 512);
  driver.takeUsed();
  driver.submit(buffers(15), { indirect: true });
  assert.equal(queue.pop()!.writableLength, 7 * 64);
});

Deno.test("push() publishes the used element and used.idx to the driver", () => {
  const { driver, queue } = setUp();
  const first = driver.submit(request);
  const second = driver.submit([{ address: DATA, length: 8, writable: true }]);
  const a = queue.pop()!;
  const b = queue.pop()!;
  assert.deepEqual([a.head, b.head], [first, second]);
  queue.push(b.head, 8);
  queue.push(a.head, 1);
  assert.equal(driver.usedIdx, 2);
  assert.deepEqual(driver.takeUsed(), [{ head: second, written: 8 }, { head: first, written: 1 }]);
  assert.equal(driver.freeDescriptors, 16);
});

Deno.test("push() refuses a head the device does not hold or too many bytes written", () => {
  const { driver, queue } = setUp();
  driver.submit(request);
  const chain = queue.pop()!;
  assert.throws(() => queue.push(chain.head, 2), /has 1 writable/);
  assert.throws(() => queue.push(16, 0), /the queue has 16 entries/);
  assert.throws(() => queue.push((chain.head + 1) % 16, 0), /does not hold it/);
  queue.push(chain.head, 1);
  assert.throws(() => queue.push(chain.head, 0), VirtQueueError);
});

Deno.test("the rings keep working across the 16-bit index wrap", () => {
  const { driver, queue } = setUp({ size: 4 });
  for (let i = 0; i < 70_000; i++) {
    const head = driver.submit([{ address: DATA + (i % 4) * 8, length: 8, writable: true }]);
    const chain = queue.pop()!;
    assert.equal(chain.head, head);
    queue.push(head, 4);
    const used = driver.takeUsed();
    if (used.length !== 1 || used[0].head !== head) assert.fail(`round ${i}: ${used}`);
  }
  assert.equal(driver.usedIdx, 70_000 & 0xffff);
  assert.equal(queue.queueState().nextAvail, 70_000 & 0xffff);
});

Deno.test("a batch that straddles avail.idx 65535 -> 0 is popped in order", () => {
  const memory = GuestMemory.ofSize(4 << 20);
  const driver = new SplitQueueDriver(memory, { base: QUEUE_BASE, size: 8, startIndex: 65533 });
  const queue = SplitQueue.restore(memory, driver.config, {
    nextAvail: 65533,
    nextUsed: 65533,
    usedSinceInterruptCheck: 0,
    inFlight: [],
  });
  const heads = [0, 1, 2, 3, 4, 5].map((i) => driver.add([{ address: DATA + i, length: 1 }]));
  driver.publish();
  assert.equal(driver.availIdx, 3);
  assert.equal(queue.availableCount(), 6);
  const popped = heads.map(() => queue.pop()!.head);
  assert.deepEqual(popped, heads);
  popped.forEach((head) => queue.push(head, 0));
  assert.equal(driver.usedIdx, 3);
  assert.deepEqual(driver.takeUsed().map((u) => u.head), heads);
});

Deno.test("pop() follows an indirect table and ignores WRITE on the indirect descriptor", () => {
  const { driver, queue } = setUp({ indirectEntries: 8 });
  const head = driver.submit(request, { indirect: true });
  assert.equal(driver.freeDescriptors, 15, "an indirect chain takes one ring descriptor");
  const chain = queue.pop()!;
  assert.equal(chain.head, head);
  assert.equal(chain.readable.length, 2);
  assert.equal(chain.writable.length, 1);
  assert.equal(chain.readableLength, 528);
  queue.push(head, 1);
  assert.deepEqual(driver.takeUsed(), [{ head, written: 1 }]);

  // Re-point the same table with WRITE set on the referring descriptor: still readable first.
  const table = DATA + 0x10000;
  driver.writeTable(table, [
    { address: DATA, length: 4, flags: 1, next: 1 },
    { address: DATA + 4, length: 4, flags: 2 },
  ]);
  driver.writeDescriptor(3, { address: table, length: 32, flags: 4 | 2 });
  driver.makeAvailable(3);
  driver.publish();
  const again = queue.pop()!;
  assert.deepEqual([again.readableLength, again.writableLength], [4, 4]);
});

Deno.test("pop() accepts direct descriptors followed by an indirect table", () => {
  const { driver, queue } = setUp({ indirectEntries: 4 });
  const table = DATA + 0x10000;
  driver.writeTable(table, [{ address: DATA + 0x100, length: 32, flags: 2 }]);
  driver.writeDescriptor(5, { address: DATA, length: 8, flags: 1, next: 9 });
  driver.writeDescriptor(9, { address: table, length: 16, flags: 4 });
  driver.makeAvailable(5);
  driver.publish();
  const chain = queue.pop()!;
  assert.deepEqual(chain.readable.map((b) => b.address), [DATA]);
  assert.deepEqual(chain.writable.map((b) => b.address), [DATA + 0x100]);
});

Deno.test("needsInterrupt() honours VIRTQ_AVAIL_F_NO_INTERRUPT without EVENT_IDX", () => {
  const { driver, queue } = setUp();
  assert.equal(queue.needsInterrupt(), false, "nothing pushed yet");
  driver.submit(request);
  queue.push(queue.pop()!.head, 0);
  assert.equal(queue.needsInterrupt(), true);
  assert.equal(queue.needsInterrupt(), false, "already decided for that push");
  driver.setNoInterrupt(true);
  driver.submit(request);
  queue.push(queue.pop()!.head, 0);
  assert.equal(queue.needsInterrupt(), false);
});

Deno.test("needsInterrupt() with EVENT_IDX fires only when used.idx passes used_event", () => {
  const { driver, queue } = setUp({ eventIdx: true });
  driver.setNoInterrupt(true); // must be ignored with EVENT_IDX
  driver.setUsedEvent(2); // "interrupt me once entry 2 is used", i.e. used.idx reaches 3
  const heads = [0, 1, 2, 3].map(() => driver.add([{ address: DATA, length: 4 }]));
  driver.publish();
  const complete = () => queue.push(queue.pop()!.head, 0);
  complete();
  assert.equal(queue.needsInterrupt(), false, "used.idx 1");
  complete();
  assert.equal(queue.needsInterrupt(), false, "used.idx 2");
  complete();
  assert.equal(queue.needsInterrupt(), true, "used.idx 3 passes used_event 2");
  complete();
  assert.equal(queue.needsInterrupt(), false, "used.idx 4: already past");
  assert.equal(driver.takeUsed().length, heads.length);
});

Deno.test("needsInterrupt() with EVENT_IDX covers every push since the last decision", () => {
  const { driver, queue } = setUp({ eventIdx: true });
  driver.setUsedEvent(1);
  [0, 1, 2].forEach(() => driver.add([{ address: DATA, length: 4 }]));
  driver.publish();
  for (let i = 0; i < 3; i++) queue.push(queue.pop()!.head, 0);
  assert.equal(queue.needsInterrupt(), true, "used_event 1 lies inside the batch 0..3");
});

Deno.test("with EVENT_IDX the device publishes avail_event when idle so the driver can skip kicks", () => {
  const { driver, queue } = setUp({ eventIdx: true });
  driver.add(request);
  assert.equal(driver.publish(), true, "avail_event 0: the first chain is wanted");
  driver.add(request);
  assert.equal(driver.publish(), false, "the device has not caught up: no kick needed");
  queue.pop();
  queue.pop();
  assert.equal(queue.pop(), undefined);
  assert.equal(driver.availEvent, 2, "idle at index 2");
  driver.add(request);
  assert.equal(driver.publish(), true);
});

Deno.test("without EVENT_IDX the driver kicks on every publish", () => {
  const { driver } = setUp();
  driver.add(request);
  assert.equal(driver.publish(), true);
  driver.add(request);
  assert.equal(driver.publish(), true);
});

Deno.test("queueState() round-trips through restore() with chains in flight", () => {
  const { memory, driver, queue } = setUp({ eventIdx: true });
  driver.submit(request);
  driver.submit(request);
  const first = queue.pop()!;
  const second = queue.pop()!;
  queue.push(first.head, 1);
  const state = JSON.parse(JSON.stringify(queue.queueState()));
  assert.deepEqual(state, {
    nextAvail: 2,
    nextUsed: 1,
    usedSinceInterruptCheck: 1,
    inFlight: [{ head: second.head, writableLength: 1 }],
  });
  const restored = SplitQueue.restore(memory, driver.config, state, { features: driver.features });
  assert.equal(restored.pop(), undefined);
  restored.push(second.head, 1);
  assert.throws(() => restored.push(first.head, 0), /does not hold it/);
  assert.deepEqual(driver.takeUsed().map((u) => u.head), [first.head, second.head]);
});

Deno.test("restore() refuses saved state that does not fit the queue", () => {
  const { memory, driver } = setUp();
  const good = { nextAvail: 1, nextUsed: 0, usedSinceInterruptCheck: 0, inFlight: [] };
  const bad: Array<[unknown, RegExp]> = [
    [null, /not an object/],
    [{ ...good, nextAvail: 65536 }, /nextAvail 65536/],
    [{ ...good, nextUsed: -1 }, /nextUsed -1/],
    [{ ...good, nextUsed: "1" }, /nextUsed 1 is not an integer/],
    [{ ...good, usedSinceInterruptCheck: 1.5 }, /usedSinceInterruptCheck/],
    [{ ...good, inFlight: {} }, /inFlight is not an array/],
    [{ ...good, inFlight: [{ head: 16, writableLength: 0 }] }, /inFlight head 16/],
    [{ ...good, inFlight: [{ head: 1, writableLength: 2 ** 33 }] }, /writableLength/],
    [{
      ...good,
      inFlight: [{ head: 1, writableLength: 0 }, { head: 1, writableLength: 0 }],
    }, /in flight twice/],
    [{ ...good, inFlight: new Array(17).fill({ head: 0, writableLength: 0 }) }, /17 chains/],
  ];
  for (const [state, message] of bad) {
    assert.throws(() => SplitQueue.restore(memory, driver.config, state), message);
    assert.throws(() => SplitQueue.restore(memory, driver.config, state), VirtQueueError);
  }
});

Deno.test("createSplitQueue() applies the negotiated ring features", () => {
  const { memory, driver } = setUp();
  const both = createSplitQueue(
    memory,
    driver.config,
    VIRTIO_F.RING_EVENT_IDX | VIRTIO_F.RING_INDIRECT_DESC,
  );
  assert.deepEqual([both.eventIdx, both.indirect, both.size], [true, true, 16]);
  const none = createSplitQueue(memory, driver.config, VIRTIO_F.VERSION_1);
  assert.deepEqual([none.eventIdx, none.indirect], [false, false]);
});
