import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { MalformedChainError, SplitQueue, type SplitQueueOptions } from "./queue.ts";
import { VirtQueueError } from "./queue_types.ts";
import { type RawDescriptor, SplitQueueDriver } from "./testing/driver_harness.ts";

const NEXT = 1;
const WRITE = 2;
const INDIRECT = 4;
const RAM = 1 << 20;
const DATA = 0x8_0000;
const TABLE = 0x9_0000;

function setUp(
  memory = GuestMemory.ofSize(RAM),
  queueOptions: SplitQueueOptions = {},
  size = 8,
) {
  const driver = new SplitQueueDriver(memory, { base: 0x1000, size, indirectEntries: 4 });
  const queue = new SplitQueue(memory, driver.config, {
    features: driver.features,
    ...queueOptions,
  });
  return { memory, driver, queue };
}

/** Writes `descriptors` at indices 0.., makes head 0 available and expects pop() to refuse it. */
function assertRefused(
  descriptors: RawDescriptor[],
  message: RegExp,
  options: { memory?: GuestMemory; queueOptions?: SplitQueueOptions; table?: RawDescriptor[] } = {},
): void {
  const { driver, queue } = setUp(options.memory, options.queueOptions);
  descriptors.forEach((d, i) => driver.writeDescriptor(i, d));
  if (options.table) driver.writeTable(TABLE, options.table);
  driver.makeAvailable(0);
  driver.makeAvailable(7);
  driver.writeDescriptor(7, { address: DATA, length: 1, flags: 0 });
  driver.publish();
  const error = thrownBy(() => queue.pop());
  assert.ok(error instanceof MalformedChainError, `not a MalformedChainError: ${error}`);
  assert.match(error.message, message);
  assert.equal(error.head, 0, "the device can hand the chain back");
  assert.equal(queue.queueState().nextAvail, 1, "the bad chain is consumed");
  assert.equal(queue.pop()?.head, 7, "the next chain is served");
  queue.push(0, 0);
  assert.deepEqual(driver.takeUsed(), [{ head: 0, written: 0 }]);
}

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return assert.fail("expected an exception");
}

Deno.test("pop() refuses a descriptor loop", () => {
  assertRefused([
    { address: DATA, length: 8, flags: NEXT, next: 1 },
    { address: DATA, length: 8, flags: NEXT, next: 0 },
  ], /loops/);
  assertRefused([{ address: DATA, length: 8, flags: NEXT, next: 0 }], /loops/);
});

Deno.test("pop() refuses a loop inside an indirect table", () => {
  assertRefused([{ address: TABLE, length: 48, flags: INDIRECT }], /indirect table.*loops/, {
    table: [
      { address: DATA, length: 8, flags: NEXT, next: 1 },
      { address: DATA, length: 8, flags: NEXT, next: 2 },
      { address: DATA, length: 8, flags: NEXT, next: 1 },
    ],
  });
});

Deno.test("pop() refuses next indices past the table", () => {
  assertRefused([{ address: DATA, length: 8, flags: NEXT, next: 8 }], /descriptor 8 but/);
  assertRefused([{ address: TABLE, length: 16, flags: INDIRECT }], /has 1 entries/, {
    table: [{ address: DATA, length: 8, flags: NEXT, next: 1 }],
  });
});

Deno.test("pop() refuses buffers outside guest RAM", () => {
  assertRefused([{ address: RAM - 4, length: 8, flags: 0 }], /8 bytes at 0xffffc/);
  assertRefused([{ address: RAM, length: 1, flags: WRITE }], /not inside one guest RAM region/);
  assertRefused([{ address: 0xffff_ffff_ffff_f000n, length: 16, flags: 0 }], /0xfffffffffffff000/);
  assertRefused([{ address: 2 ** 53 - 8, length: 16, flags: 0 }], /not inside/);
  assertRefused([{ address: TABLE, length: 16, flags: INDIRECT }], /0x100000 that is not/, {
    table: [{ address: RAM, length: 8, flags: 0 }],
  });
});

Deno.test("pop() refuses a buffer straddling two RAM regions, with or without a gap", () => {
  const gap = new GuestMemory([
    { start: 0, bytes: new Uint8Array(RAM) },
    { start: 2 * RAM, bytes: new Uint8Array(RAM) },
  ]);
  assertRefused([{ address: RAM - 8, length: 16, flags: 0 }], /not inside one/, { memory: gap });
  assertRefused([{ address: RAM + 8, length: 16, flags: 0 }], /not inside one/, { memory: gap });
  const adjacent = new GuestMemory([
    { start: 0, bytes: new Uint8Array(RAM) },
    { start: RAM, bytes: new Uint8Array(RAM) },
  ]);
  assertRefused([{ address: RAM - 8, length: 16, flags: 0 }], /not inside one/, {
    memory: adjacent,
  });
  // A buffer wholly inside the second region is fine.
  const { driver, queue } = setUp(gap);
  driver.submit([{ address: 2 * RAM + 16, length: 16, writable: true }]);
  queue.pop()!.writable[0].bytes[0] = 7;
  assert.equal(gap.readU8(2 * RAM + 16), 7);
});

Deno.test("pop() refuses zero-length buffers and indirect tables", () => {
  assertRefused([{ address: DATA, length: 0, flags: 0 }], /zero-length/);
  assertRefused([{ address: TABLE, length: 0, flags: INDIRECT }], /0 bytes/);
  assertRefused([{ address: TABLE, length: 24, flags: INDIRECT }], /24 bytes.*multiple of 16/);
});

Deno.test("pop() refuses a chain longer than the total length cap", () => {
  assertRefused(
    [
      { address: DATA, length: 4096, flags: NEXT, next: 1 },
      { address: DATA, length: 4097, flags: WRITE },
    ],
    /longer than 8192 bytes/,
    { queueOptions: { maxChainBytes: 8192 } },
  );
});

Deno.test("pop() refuses a chain of more than 4 GiB by default", () => {
  const chunk = 64 << 20;
  const memory = GuestMemory.ofSize(chunk + (1 << 20));
  const { driver, queue } = setUp(memory, {}, 128);
  for (let i = 0; i < 65; i++) {
    driver.writeDescriptor(i, { address: 1 << 20, length: chunk, flags: NEXT, next: i + 1 });
  }
  driver.writeDescriptor(65, { address: 1 << 20, length: 1, flags: 0 });
  driver.makeAvailable(0);
  driver.publish();
  assert.throws(() => queue.pop(), /longer than 4294967296 bytes/);
});

Deno.test("pop() refuses a readable buffer after a writable one", () => {
  assertRefused([
    { address: DATA, length: 8, flags: WRITE | NEXT, next: 1 },
    { address: DATA, length: 8, flags: 0 },
  ], /readable buffer after a device-writable/);
  assertRefused([{ address: TABLE, length: 32, flags: INDIRECT }], /readable buffer after/, {
    table: [
      { address: DATA, length: 8, flags: WRITE | NEXT, next: 1 },
      { address: DATA, length: 8, flags: 0 },
    ],
  });
  assertRefused(
    [
      { address: DATA, length: 8, flags: WRITE | NEXT, next: 1 },
      { address: TABLE, length: 16, flags: INDIRECT },
    ],
    /readable buffer after/,
    { table: [{ address: DATA, length: 8, flags: 0 }] },
  );
});

Deno.test("pop() refuses nested indirect tables and INDIRECT with NEXT", () => {
  assertRefused([{ address: TABLE, length: 16, flags: INDIRECT }], /nests an indirect table/, {
    table: [{ address: TABLE, length: 16, flags: INDIRECT }],
  });
  assertRefused(
    [
      { address: TABLE, length: 16, flags: INDIRECT | NEXT, next: 1 },
      { address: DATA, length: 8, flags: 0 },
    ],
    /both INDIRECT and NEXT/,
    { table: [{ address: DATA, length: 8, flags: 0 }] },
  );
});

Deno.test("pop() refuses indirect tables when the feature was not negotiated", () => {
  assertRefused([{ address: TABLE, length: 16, flags: INDIRECT }], /was not negotiated/, {
    queueOptions: { features: 0n },
    table: [{ address: DATA, length: 8, flags: 0 }],
  });
});

Deno.test("pop() refuses an indirect table outside RAM or with more than 65536 entries", () => {
  assertRefused([{ address: RAM - 16, length: 32, flags: INDIRECT }], /indirect table.*not inside/);
  assertRefused(
    [{ address: 0, length: 16 * 65537, flags: INDIRECT }],
    /65537 entries, more than 65536/,
    { memory: GuestMemory.ofSize(2 << 20) },
  );
});

Deno.test("pop() refuses a ring entry naming a descriptor past the queue", () => {
  const { driver, queue } = setUp();
  driver.makeAvailable(8);
  driver.publish();
  assert.throws(() => queue.pop(), /names descriptor 8 but the queue has 8/);
  assert.equal(queue.queueState().nextAvail, 1);
});

Deno.test("pop() refuses a head made available again while the device holds it", () => {
  const { driver, queue } = setUp();
  const head = driver.submit([{ address: DATA, length: 8 }]);
  queue.pop();
  driver.makeAvailable(head);
  driver.publish();
  try {
    queue.pop();
    assert.fail("pop() accepted a head in flight");
  } catch (error) {
    assert.ok(error instanceof MalformedChainError);
    assert.equal(error.head, undefined, "the head must not be returned twice");
    assert.match(error.message, /made available again/);
  }
  queue.push(head, 0);
});

Deno.test("pop() refuses avail.idx moving more than the queue size ahead, without consuming", () => {
  const { driver, queue } = setUp();
  driver.setAvailIdx(9);
  for (let i = 0; i < 2; i++) {
    try {
      queue.pop();
      assert.fail("pop() accepted avail.idx 9 in a queue of 8");
    } catch (error) {
      assert.ok(error instanceof VirtQueueError);
      assert.ok(!(error instanceof MalformedChainError));
      assert.match(error.message, /Available index 9 is 9 entries past the device's 0/);
    }
  }
  assert.equal(queue.queueState().nextAvail, 0);
  driver.setAvailIdx(0xffff); // "decremented": 65535 entries ahead
  assert.throws(() => queue.pop(), /65535 entries past/);
  assert.throws(() => queue.availableCount(), VirtQueueError);
});

Deno.test("the constructor refuses sizes that are not powers of two up to the maximum", () => {
  const memory = GuestMemory.ofSize(4 << 20);
  const layout = { descTable: 0x10000, availRing: 0x20000, usedRing: 0x30000 };
  for (const size of [0, 3, 6, 100, 65536, -8, 1.5, NaN]) {
    assert.throws(
      () => new SplitQueue(memory, { ...layout, size }),
      new RegExp(`Queue size ${size} is not a power of two between 1 and 32768`),
    );
  }
  assert.throws(
    () => new SplitQueue(memory, { ...layout, size: 512 }, { maxSize: 256 }),
    /between 1 and 256/,
  );
  for (const size of [1, 256, 32768]) {
    assert.equal(new SplitQueue(memory, { ...layout, size }).size, size);
  }
});

Deno.test("the constructor refuses misaligned rings and rings outside one RAM region", () => {
  const memory = new GuestMemory([
    { start: 0, bytes: new Uint8Array(RAM) },
    { start: 2 * RAM, bytes: new Uint8Array(RAM) },
  ]);
  const good = { size: 256, descTable: 0x10000, availRing: 0x20000, usedRing: 0x30000 };
  const bad: Array<[Partial<typeof good>, RegExp]> = [
    [{ descTable: 0x10008 }, /Descriptor table address 0x10008 is not 16-byte aligned/],
    [{ availRing: 0x20001 }, /Available ring address 0x20001 is not 2-byte aligned/],
    [{ usedRing: 0x30002 }, /Used ring address 0x30002 is not 4-byte aligned/],
    [{ descTable: RAM - 0x800 }, /Descriptor table of 4096 bytes at 0xff800 is not inside/],
    [{ availRing: 2 * RAM - 0x100 }, /Available ring of 518 bytes/],
    [{ usedRing: 3 * RAM }, /Used ring of 2054 bytes at 0x300000 is not inside/],
    [{ usedRing: -4 }, /Used ring address -4 is not a valid guest address/],
  ];
  for (const [change, message] of bad) {
    assert.throws(() => new SplitQueue(memory, { ...good, ...change }), message);
    assert.throws(() => new SplitQueue(memory, { ...good, ...change }), VirtQueueError);
  }
  assert.equal(new SplitQueue(memory, { ...good, usedRing: 2 * RAM }).size, 256);
});
