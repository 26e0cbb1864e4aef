import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { bytesAt, mmap, munmap, pointerValue } from "../../ffi/libc.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../ffi/libc_symbols.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import type { ActivateContext } from "./virtio_device.ts";
import { VIRTIO_F } from "./virtio_device.ts";
import { VirtQueueError } from "./queue_types.ts";
import { BALLOON_F, BALLOON_STAT, BalloonError, VirtioBalloon } from "./balloon.ts";

const PAGE = 4096;

interface Harness {
  queues: FakeQueue[];
  context: ActivateContext;
  interrupts: number[];
  configChanges: number;
  failures: string[];
}

function harness(memory: GuestMemory, features = VIRTIO_F.VERSION_1 | BALLOON_F.STATS_VQ): Harness {
  const h: Harness = {
    queues: [new FakeQueue(), new FakeQueue(), new FakeQueue()],
    interrupts: [],
    configChanges: 0,
    failures: [],
    context: undefined as unknown as ActivateContext,
  };
  h.context = {
    memory,
    features,
    queues: h.queues,
    interrupt: { usedBuffer: (q) => h.interrupts.push(q), configChanged: () => h.configChanges++ },
    fail: (reason) => h.failures.push(reason),
  };
  return h;
}

function pfnList(pfns: number[]): Uint8Array {
  const bytes = new Uint8Array(pfns.length * 4);
  const view = new DataView(bytes.buffer);
  pfns.forEach((pfn, i) => view.setUint32(i * 4, pfn, true));
  return bytes;
}

/** Rss in KiB of the mapping starting at `address`, from /proc/self/smaps. */
function mappingRssKiB(address: bigint): number {
  const smaps = Deno.readTextFileSync("/proc/self/smaps");
  const start = address.toString(16);
  const lines = smaps.split("\n");
  const at = lines.findIndex((line) => line.startsWith(`${start}-`));
  assert.ok(at >= 0, "mapping found in smaps");
  for (let i = at + 1; i < lines.length; i++) {
    const match = /^Rss:\s+(\d+) kB/.exec(lines[i]);
    if (match) return Number(match[1]);
  }
  throw new Error("No Rss line");
}

Deno.test("VirtioBalloon inflation returns touched pages to the host (RSS falls)", () => {
  const pages = 64;
  const pointer = mmap(pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  try {
    const bytes = bytesAt(pointer, pages * PAGE);
    const memory = new GuestMemory([{ start: 0, bytes }]);
    for (let p = 0; p < pages; p++) bytes[p * PAGE] = 0xaa;
    const address = pointerValue(pointer);
    const before = mappingRssKiB(address);
    assert.equal(before, pages * 4);

    const balloon = new VirtioBalloon({ memorySize: pages * PAGE });
    const h = harness(memory);
    balloon.activate(h.context);
    // 32 pages, unordered and split over two buffers; one duplicate.
    const inflated = [...Array(32).keys()].map((i) => 63 - i * 2);
    h.queues[0].add([pfnList(inflated.slice(0, 10)), pfnList([...inflated.slice(10), 1])]);
    balloon.notify(0);
    assert.deepEqual(h.queues[0].used, [{ head: 0, written: 0 }]);
    assert.deepEqual(h.interrupts, [0]);
    assert.equal(balloon.inflatedPages, 32);
    assert.equal(mappingRssKiB(address), before - 32 * 4);
    assert.equal(bytes[63 * PAGE], 0, "an inflated page reads as zero");
    assert.equal(bytes[62 * PAGE], 0xaa, "other pages are untouched");

    h.queues[1].add([pfnList(inflated.slice(0, 4))]);
    balloon.notify(1);
    assert.equal(balloon.inflatedPages, 28);
    assert.deepEqual(h.queues[1].used, [{ head: 0, written: 0 }]);
  } finally {
    munmap(pointer, pages * PAGE);
  }
});

Deno.test("VirtioBalloon ignores PFNs outside guest RAM and logs once", () => {
  const logs: string[] = [];
  const balloon = new VirtioBalloon({ memorySize: 16 * PAGE, log: (m) => logs.push(m) });
  const memory = GuestMemory.ofSize(16 * PAGE);
  memory.fill(0, 16 * PAGE, 0x55);
  const h = harness(memory);
  balloon.activate(h.context);
  h.queues[0].add([pfnList([16, 0xffffffff, 1 << 20])]);
  h.queues[0].add([pfnList([17]), new Uint8Array(3)]);
  balloon.notify(0);
  assert.equal(h.queues[0].used.length, 2);
  assert.equal(balloon.inflatedPages, 0);
  assert.equal(logs.filter((m) => /outside guest RAM/.test(m)).length, 1);
  assert.equal(memory.readU8(0), 0x55, "nothing was discarded");
  assert.equal(h.failures.length, 0);
});

Deno.test("VirtioBalloon target changes notify the driver and actual is the driver's", () => {
  const balloon = new VirtioBalloon({ memorySize: 1024 * PAGE });
  const h = harness(GuestMemory.ofSize(PAGE));
  balloon.activate(h.context);
  balloon.setTarget(300);
  assert.equal(h.configChanges, 1);
  const config = new Uint8Array(8);
  balloon.readConfig(0, config);
  assert.deepEqual([...config], [44, 1, 0, 0, 0, 0, 0, 0]);
  balloon.writeConfig(0, new Uint8Array([1, 2, 3, 4, 0x2c, 1, 0, 0]));
  assert.equal(balloon.targetPages, 300, "num_pages is read-only for the driver");
  assert.equal(balloon.actualPages, 300);
  assert.throws(() => balloon.setTarget(1025), BalloonError);
  assert.throws(() => balloon.setTarget(-1), BalloonError);
  assert.throws(() => balloon.setTarget(1.5), BalloonError);
});

Deno.test("VirtioBalloon offers stats and deflate-on-OOM but not must-tell-host", () => {
  const balloon = new VirtioBalloon({ memorySize: PAGE });
  assert.ok(balloon.features & BALLOON_F.STATS_VQ);
  assert.ok(balloon.features & BALLOON_F.DEFLATE_ON_OOM);
  assert.equal(balloon.features & BALLOON_F.MUST_TELL_HOST, 0n);
  assert.deepEqual(balloon.queueSizes, [256, 256, 256]);
});

Deno.test("VirtioBalloon keeps the last stats and returns the buffer on request", () => {
  const balloon = new VirtioBalloon({ memorySize: PAGE });
  const h = harness(GuestMemory.ofSize(PAGE));
  balloon.activate(h.context);
  assert.equal(balloon.requestStats(), false, "no buffer yet");
  const stats = new Uint8Array(20);
  const view = new DataView(stats.buffer);
  view.setUint16(0, BALLOON_STAT.MEMFREE, true);
  view.setBigUint64(2, 123456789n, true);
  view.setUint16(10, BALLOON_STAT.MEMTOT, true);
  view.setBigUint64(12, 987654321n, true);
  h.queues[2].add([stats.subarray(0, 7), stats.subarray(7)]);
  balloon.notify(2);
  assert.equal(h.queues[2].used.length, 0, "the buffer is held until stats are wanted");
  assert.equal(balloon.stats?.values.get(BALLOON_STAT.MEMFREE), 123456789n);
  assert.equal(balloon.stats?.values.get(BALLOON_STAT.MEMTOT), 987654321n);
  assert.equal(balloon.requestStats(), true);
  assert.deepEqual(h.queues[2].used, [{ head: 0, written: 0 }]);
  assert.deepEqual(h.interrupts, [2]);
});

Deno.test("VirtioBalloon fails the device on a malformed chain instead of throwing", () => {
  const balloon = new VirtioBalloon({ memorySize: PAGE });
  const h = harness(GuestMemory.ofSize(PAGE));
  h.queues[0].pop = () => {
    throw new VirtQueueError("chain outside guest RAM");
  };
  balloon.activate(h.context);
  assert.equal(h.failures.length, 1);
  balloon.notify(0);
  assert.equal(h.failures.length, 1, "a failed device ignores notifications");
});
