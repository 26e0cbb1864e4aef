import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { MalformedChainError, SplitQueue } from "./queue.ts";
import { ChainBuffers, type DescriptorChain } from "./queue_types.ts";
import { type DriverBuffer, SplitQueueDriver } from "./testing/driver_harness.ts";
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from "./split_ring.ts";

const QUEUE_BASE = 0x1000;
const DATA = 0x10_0000;
const MEMORY = 4 << 20;

/** Two queues over identical memory and drivers: one served by pop(), one by popInto(). */
function twins(indirectEntries = 0) {
  const make = () => {
    const memory = GuestMemory.ofSize(MEMORY);
    const driver = new SplitQueueDriver(memory, { base: QUEUE_BASE, size: 16, indirectEntries });
    const queue = new SplitQueue(memory, driver.config, { features: driver.features });
    return { memory, driver, queue };
  };
  return [make(), make()] as const;
}

/** What pop() says of a chain, in popInto()'s terms. */
function flat(chain: DescriptorChain) {
  return {
    head: chain.head,
    readable: chain.readable.map((b) => [b.address, b.bytes.length]),
    writable: chain.writable.map((b) => [b.address, b.bytes.length]),
    readableLength: chain.readableLength,
    writableLength: chain.writableLength,
  };
}

function flatInto(out: ChainBuffers) {
  const side = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => [out.addresses[from + i], out.lengths[from + i]]);
  return {
    head: out.head,
    readable: side(0, out.readableCount),
    writable: side(out.readableCount, out.count),
    readableLength: out.readableLength,
    writableLength: out.writableLength,
  };
}

const chains: Array<{ buffers: DriverBuffer[]; indirect?: boolean }> = [
  { buffers: [{ address: DATA, length: 12 }, { address: DATA + 12, length: 1500 }] },
  { buffers: [{ address: DATA + 0x1000, length: 1526, writable: true }] },
  {
    buffers: [
      { address: DATA + 0x2000, length: 16 },
      { address: DATA + 0x3000, length: 512, writable: true },
      { address: DATA + 0x4000, length: 1, writable: true },
    ],
    indirect: true,
  },
  {
    buffers: Array.from(
      { length: 12 },
      (_, i) => ({ address: DATA + 0x8000 + i * 64, length: 64 }),
    ),
    indirect: true,
  },
];

Deno.test("popInto() sees the same chains as pop(), direct and indirect, with one list reused", () => {
  const [a, b] = twins(16);
  const out = new ChainBuffers();
  for (const { buffers, indirect } of chains) {
    a.driver.submit(buffers, { indirect });
    b.driver.submit(buffers, { indirect });
    const chain = a.queue.pop()!;
    assert.equal(b.queue.popInto(out), true);
    assert.deepEqual(flatInto(out), flat(chain));
    for (let i = 0; i < out.count; i++) {
      // The recorded place is the live guest byte at that address.
      const address = out.addresses[i];
      b.memory.writeU8(address, 0x5a);
      assert.equal(out.sources[i][out.offsets[i]], 0x5a);
      assert.deepEqual(out.bytes(i), b.memory.read(address, out.lengths[i]));
    }
    a.queue.push(chain.head, 0);
    b.queue.push(out.head, 0);
  }
  assert.equal(b.queue.popInto(out), false, "nothing left");
  assert.equal(a.queue.pop(), undefined);
});

Deno.test("popInto() refuses malformed chains as pop() does and owes the head back", () => {
  const cases: Array<[string, (driver: SplitQueueDriver) => number]> = [
    ["a loop", (d) => {
      d.writeDescriptor(0, { address: DATA, length: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
      d.writeDescriptor(1, { address: DATA, length: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 });
      return 0;
    }],
    ["a buffer outside RAM", (d) => {
      d.writeDescriptor(2, { address: MEMORY - 4, length: 8, flags: 0 });
      return 2;
    }],
    ["a readable buffer after a writable one", (d) => {
      d.writeDescriptor(3, {
        address: DATA,
        length: 8,
        flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
        next: 4,
      });
      d.writeDescriptor(4, { address: DATA, length: 8, flags: 0 });
      return 3;
    }],
    ["an indirect table without the feature", (d) => {
      d.writeDescriptor(5, { address: DATA, length: 32, flags: 4 });
      return 5;
    }],
  ];
  for (const [what, build] of cases) {
    const [a, b] = twins();
    const head = build(a.driver);
    build(b.driver);
    for (const { driver } of [a, b]) {
      driver.makeAvailable(head);
      driver.publish();
    }
    const caught = (take: () => unknown): MalformedChainError => {
      try {
        take();
      } catch (error) {
        if (error instanceof MalformedChainError) return error;
        throw error;
      }
      throw new Error(`${what}: not refused`);
    };
    const byPop = caught(() => a.queue.pop());
    const byPopInto = caught(() => b.queue.popInto(new ChainBuffers()));
    assert.equal(byPopInto.message, byPop.message, what);
    assert.equal(byPopInto.head, head, `${what}: names its head`);
    b.queue.push(head, 0); // owed back with nothing written
    assert.deepEqual(b.driver.takeUsed(), [{ head, written: 0 }], `${what}: returned`);
  }
});

Deno.test("popInto() tells the write tracker of the writable buffers only", () => {
  const [, b] = twins(8);
  const marked: Array<[number, number]> = [];
  b.memory.trackWrites({ mark: (address, length) => marked.push([address, length]) });
  b.driver.submit([
    { address: DATA, length: 16 },
    { address: DATA + 0x1000, length: 100, writable: true },
    { address: DATA + 0x2000, length: 7, writable: true },
  ], { indirect: true });
  marked.length = 0; // the driver's own writes
  assert.equal(b.queue.popInto(new ChainBuffers()), true);
  assert.deepEqual(marked, [[DATA + 0x1000, 100], [DATA + 0x2000, 7]]);
});

Deno.test("ChainBuffers grows past its first size and copies", () => {
  const out = new ChainBuffers();
  const bytes = new Uint8Array(64);
  out.reset(3);
  for (let i = 0; i < 20; i++) out.add(bytes, i, 1, 0x100 + i, i >= 5);
  assert.equal(out.count, 20);
  assert.equal(out.readableCount, 5);
  assert.equal(out.readableLength, 5);
  assert.equal(out.writableLength, 15);
  const copy = new ChainBuffers();
  out.copyTo(copy);
  assert.equal(copy.head, 3);
  assert.deepEqual([...copy.addresses.subarray(0, 20)], [...out.addresses.subarray(0, 20)]);
  assert.equal(copy.readableCount, 5);
});
