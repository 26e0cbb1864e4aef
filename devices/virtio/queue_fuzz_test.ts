/**
 * Random descriptor tables, indirect tables and available rings thrown at `pop()`. Each
 * result is compared with a deliberately different reference walker (bigint addresses,
 * visited sets instead of counts, GuestMemory accessors instead of DataViews): both must
 * agree on accept/refuse and on the buffers. Set QUEUE_FUZZ_SEED to replay a failure.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { MalformedChainError, SplitQueue } from "./queue.ts";
import type { DescriptorChain } from "./queue_types.ts";
import { VirtQueueError } from "./queue_types.ts";
import { SplitQueueDriver } from "./testing/driver_harness.ts";
import { VIRTIO_F } from "./virtio_device.ts";

const REGION = 0x4_0000;
const SECOND = 0x8_0000; // a gap of 256 KiB between the regions
const TABLES = SECOND + 0x1_0000; // indirect tables live in the second region
const CAP = 1 << 20; // a small total length cap so the fuzzer reaches it
const ITERATIONS = 4000;

/** mulberry32: small, fast and good enough to pick test inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Expected = { buffers: Array<{ address: number; length: number; writable: boolean }> } | {
  error: string;
};

/** The spec's rules, walked independently of split_chain.ts. */
function reference(
  memory: GuestMemory,
  descTable: number,
  size: number,
  head: number,
  indirect: boolean,
): Expected {
  if (head >= size) return { error: "head past the queue" };
  let table = descTable;
  let entries = size;
  let inIndirect = false;
  let visited = new Set<number>();
  let index = head;
  let sawWritable = false;
  let total = 0;
  const buffers: Array<{ address: number; length: number; writable: boolean }> = [];
  const inRam = (address: bigint, length: number) =>
    address < 2n ** 53n && memory.contains(Number(address), length);
  for (;;) {
    if (index >= entries || visited.has(index)) return { error: "bad next or loop" };
    visited.add(index);
    const at = table + index * 16;
    const address = memory.readU64(at);
    const length = memory.readU32(at + 8);
    const flags = memory.readU16(at + 12);
    const next = memory.readU16(at + 14);
    if (flags & 4) {
      if (!indirect || inIndirect || flags & 1) return { error: "indirect not allowed here" };
      if (length === 0 || length % 16 || length / 16 > 65536) return { error: "table length" };
      if (!inRam(address, length)) return { error: "table outside RAM" };
      table = Number(address);
      entries = length / 16;
      inIndirect = true;
      visited = new Set();
      index = 0;
      continue;
    }
    if (length === 0 || !inRam(address, length)) return { error: "buffer" };
    const writable = (flags & 2) !== 0;
    if (!writable && sawWritable) return { error: "readable after writable" };
    sawWritable ||= writable;
    total += length;
    if (total > CAP) return { error: "too long" };
    buffers.push({ address: Number(address), length, writable });
    if (!(flags & 1)) return { buffers };
    index = next;
  }
}

function checkChain(memory: GuestMemory, chain: DescriptorChain, expected: Expected): void {
  assert.ok(
    "buffers" in expected,
    `pop() accepted a chain the reference refuses: ${JSON.stringify(expected)}`,
  );
  const actual = [
    ...chain.readable.map((b) => ({ address: b.address, length: b.bytes.length, writable: false })),
    ...chain.writable.map((b) => ({ address: b.address, length: b.bytes.length, writable: true })),
  ];
  assert.deepEqual(actual, expected.buffers);
  for (const buffer of [...chain.readable, ...chain.writable]) {
    assert.ok(buffer.bytes.length > 0 && memory.contains(buffer.address, buffer.bytes.length));
    const live = memory.slice(buffer.address, buffer.bytes.length);
    assert.ok(live.buffer === buffer.bytes.buffer && live.byteOffset === buffer.bytes.byteOffset);
  }
  const sum = (list: readonly { bytes: Uint8Array }[]) =>
    list.reduce((n, b) => n + b.bytes.length, 0);
  assert.equal(chain.readableLength, sum(chain.readable));
  assert.equal(chain.writableLength, sum(chain.writable));
}

function runIteration(memory: GuestMemory, random: () => number): void {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const int = (n: number) => Math.floor(random() * n);
  const size = pick([1, 2, 4, 8, 16, 32, 64]);
  const indirect = random() < 0.7;
  const start = int(0x10000);
  const driver = new SplitQueueDriver(memory, { base: 0x1000, size, startIndex: start });
  const features = indirect ? VIRTIO_F.RING_INDIRECT_DESC : 0n;
  const queue = SplitQueue.restore(memory, driver.config, {
    nextAvail: start,
    nextUsed: start,
    usedSinceInterruptCheck: 0,
    inFlight: [],
  }, { features, maxChainBytes: CAP });

  const tableAddresses = [0, 1, 2, 3].map((i) => TABLES + i * 0x400);
  const address = (): number | bigint =>
    pick<() => number | bigint>([
      () => int(REGION),
      () => SECOND + int(REGION),
      () => REGION - int(64), // straddles the end of the first region
      () => SECOND - int(64), // in the gap, running into the second region
      () => REGION + int(SECOND - REGION), // in the gap
      () => pick(tableAddresses),
      () => BigInt(int(2 ** 32)) << 32n | BigInt(int(2 ** 32)), // anywhere in 64 bits
    ])();
  const length = (): number =>
    pick<() => number>([
      () => 0,
      () => 1 + int(64),
      () => 16 * (1 + int(8)),
      () => 1 + int(REGION),
      () => CAP - int(4),
      () => int(2 ** 32),
    ])();
  const flags = (): number =>
    random() < 0.9 ? pick([0, 1, 1, 1, 2, 3, 3, 3, 4, 5, 6, 7]) : int(0x10000);
  const wild = (entries: number) => ({
    address: address(),
    length: length(),
    flags: flags(),
    next: random() < 0.8 ? int(entries) : int(0x10000),
  });
  // Mostly well-formed descriptors, so that long valid chains and indirect tables occur.
  const sane = (entries: number, index: number) => {
    if (random() < 0.1) {
      return { address: pick(tableAddresses), length: 16 * (1 + int(8)), flags: 4 };
    }
    return {
      address: pick([0, SECOND]) + int(REGION - 4096),
      length: 1 + int(4096),
      flags: (random() < 0.75 ? 1 : 0) | (random() < 0.3 ? 2 : 0),
      next: random() < 0.7 ? (index + 1) % entries : int(entries),
    };
  };
  const mostlySane = random() < 0.6;
  const descriptor = (entries: number, index: number) =>
    mostlySane && random() < 0.95 ? sane(entries, index) : wild(entries);
  for (let i = 0; i < size; i++) driver.writeDescriptor(i, descriptor(size, i));
  for (const table of tableAddresses) {
    driver.writeTable(table, Array.from({ length: 64 }, (_, i) => descriptor(8, i)));
  }
  const published = random() < 0.05 ? int(0x10000) : int(size + 1);
  for (let i = 0; i < Math.min(published, size); i++) {
    driver.makeAvailable(random() < 0.9 ? int(size) : int(0x10000));
  }
  driver.setAvailIdx(start + published);

  const inFlight = new Set<number>();
  for (let round = 0; round <= size + 1; round++) {
    const slot = (start + round) & (size - 1);
    const head = memory.readU16(driver.config.availRing + 4 + 2 * slot);
    const before = queue.queueState().nextAvail;
    let chain: DescriptorChain | undefined;
    try {
      chain = queue.pop();
    } catch (error) {
      if (!(error instanceof VirtQueueError)) throw error;
      if (!(error instanceof MalformedChainError)) {
        assert.ok(published > size, `pop() refused the ring: ${error.message}`);
        return;
      }
      assert.equal(queue.queueState().nextAvail, (before + 1) & 0xffff, "a bad chain is consumed");
      if (error.head !== undefined) {
        assert.equal(error.head, head);
        const expected = reference(memory, driver.config.descTable, size, head, indirect);
        assert.ok("error" in expected, `pop() refused a good chain: ${error.message}`);
        inFlight.add(error.head);
      } else {
        assert.ok(head >= size || inFlight.has(head), `no head for: ${error.message}`);
      }
      continue;
    }
    if (chain === undefined) {
      assert.equal(round, published, "pop() stopped early");
      return;
    }
    assert.ok(round < published, "pop() returned more chains than were published");
    assert.ok(!inFlight.has(head), "pop() returned a head the device already holds");
    checkChain(memory, chain, reference(memory, driver.config.descTable, size, head, indirect));
    inFlight.add(chain.head);
    if (random() < 0.5) {
      queue.push(chain.head, int(chain.writableLength + 1));
      inFlight.delete(chain.head);
    }
  }
  assert.fail("pop() kept returning chains past the queue size");
}

Deno.test("pop() on random rings returns valid chains or throws VirtQueueError", () => {
  const seed = Number(Deno.env.get("QUEUE_FUZZ_SEED") ?? Date.now() % 2 ** 31);
  const memory = new GuestMemory([
    { start: 0, bytes: new Uint8Array(REGION) },
    { start: SECOND, bytes: new Uint8Array(REGION) },
  ]);
  const random = prng(seed);
  for (let i = 0; i < ITERATIONS; i++) {
    try {
      runIteration(memory, random);
    } catch (error) {
      console.error(`queue fuzz failed at iteration ${i}: rerun with QUEUE_FUZZ_SEED=${seed}`);
      throw error;
    }
  }
});
