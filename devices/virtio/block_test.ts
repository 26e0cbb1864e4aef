import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import type { Disk, WriteZeroesOptions } from "../../storage/disk.ts";
import { RawDisk } from "../../storage/raw_disk.ts";
import { blockHeader, blockSegments, RecordingContext } from "./_block_test_support.ts";
import { VIRTIO_BLK_F, VirtioBlock } from "./block.ts";
import { VIRTIO_BLK_S, VIRTIO_BLK_T, WRITE_ZEROES_FLAG_UNMAP } from "./block_request.ts";
import { type DescriptorChain, VirtQueueError } from "./queue_types.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import { SplitQueueDriver } from "./testing/driver_harness.ts";
import { SplitQueue } from "./queue.ts";
import { VIRTIO_F } from "./virtio_device.ts";

const ALL_FEATURES = VIRTIO_F.VERSION_1 | VIRTIO_BLK_F.FLUSH | VIRTIO_BLK_F.DISCARD |
  VIRTIO_BLK_F.WRITE_ZEROES;

function tempImage(size: number, pattern: boolean): string {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  const bytes = new Uint8Array(size);
  if (pattern) { for (let i = 0; i < size; i++) bytes[i] = (i * 13 + (i >> 9)) & 0xff; }
  Deno.writeFileSync(path, bytes);
  return path;
}

function patternAt(offset: number): number {
  return (offset * 13 + (offset >> 9)) & 0xff;
}

function setUp(
  options: { size?: number; pattern?: boolean; readOnly?: boolean; features?: bigint } = {},
) {
  const path = tempImage(options.size ?? 65536, options.pattern ?? true);
  const disk = RawDisk.open(path, { readOnly: options.readOnly });
  const device = new VirtioBlock({ disk, serial: "SERIAL-123", log: () => {} });
  const queue = new FakeQueue();
  const context = new RecordingContext([queue], options.features ?? ALL_FEATURES);
  device.activate(context);
  return {
    path,
    device,
    queue,
    context,
    [Symbol.dispose]() {
      device.close();
      Deno.removeSync(path);
    },
  };
}

Deno.test("virtio-blk offers discard and write-zeroes on writable disks, RO on read-only ones", () => {
  {
    using t = setUp();
    assert.ok(t.device.features & VIRTIO_BLK_F.DISCARD);
    assert.ok(t.device.features & VIRTIO_BLK_F.WRITE_ZEROES);
    assert.equal(t.device.features & VIRTIO_BLK_F.RO, 0n);
    assert.ok(t.device.features & VIRTIO_F.RING_EVENT_IDX);
  }
  using ro = setUp({ readOnly: true });
  assert.ok(ro.device.features & VIRTIO_BLK_F.RO);
  assert.equal(ro.device.features & VIRTIO_BLK_F.DISCARD, 0n);
});

Deno.test("virtio-blk config holds capacity in sectors, seg_max, blk_size and discard limits", () => {
  using t = setUp({ size: 1024 * 1024 + 100 });
  const config = new Uint8Array(60);
  t.device.readConfig(0, config);
  const view = new DataView(config.buffer);
  assert.equal(view.getBigUint64(0, true), 2048n);
  assert.equal(view.getUint32(12, true), 254);
  assert.equal(view.getUint32(20, true), 512);
  assert.ok(view.getUint32(36, true) > 0, "max_discard_sectors");
  assert.equal(view.getUint32(40, true), 32);
  assert.equal(config[56], 1);
  const part = new Uint8Array(4);
  t.device.readConfig(20, part);
  assert.equal(new DataView(part.buffer).getUint32(0, true), 512);
});

Deno.test("virtio-blk reads sectors into several guest buffers and reports the length", () => {
  using t = setUp();
  const a = new Uint8Array(512);
  const b = new Uint8Array(1024);
  const status = Uint8Array.of(0xff);
  const head = t.queue.add([blockHeader(VIRTIO_BLK_T.IN, 3)], [a, b, status]);
  t.device.notify(0);
  assert.deepEqual(t.queue.used, [{ head, written: 1537 }]);
  assert.equal(status[0], VIRTIO_BLK_S.OK);
  assert.equal(a[0], patternAt(1536));
  assert.equal(b[1023], patternAt(1536 + 1535));
  assert.deepEqual(t.context.usedInterrupts, [0]);
  assert.equal(t.device.stats.reads, 1);
  assert.equal(t.device.stats.bytesRead, 1536);
});

Deno.test("virtio-blk accepts a header split across buffers and status inside the data buffer", () => {
  using t = setUp();
  const header = blockHeader(VIRTIO_BLK_T.IN, 1);
  const dataAndStatus = new Uint8Array(513).fill(0xee);
  t.queue.add([header.subarray(0, 5), header.subarray(5)], [dataAndStatus]);
  t.device.notify(0);
  assert.equal(dataAndStatus[512], VIRTIO_BLK_S.OK);
  assert.equal(dataAndStatus[0], patternAt(512));
  assert.equal(dataAndStatus[511], patternAt(1023));
});

Deno.test("virtio-blk writes guest data, including data sharing the header's buffer", () => {
  using t = setUp({ pattern: false });
  const headerAndData = new Uint8Array(16 + 512);
  headerAndData.set(blockHeader(VIRTIO_BLK_T.OUT, 2));
  headerAndData.fill(0x11, 16);
  const more = new Uint8Array(512).fill(0x22);
  const status = Uint8Array.of(0xff);
  t.queue.add([headerAndData, more], [status]);
  t.device.notify(0);
  assert.equal(status[0], VIRTIO_BLK_S.OK);
  assert.deepEqual(t.queue.used[0].written, 1);
  const file = Deno.readFileSync(t.path);
  assert.equal(file[1023], 0);
  assert.equal(file[1024], 0x11);
  assert.equal(file[1535], 0x11);
  assert.equal(file[1536], 0x22);
  assert.equal(file[2047], 0x22);
  assert.equal(file[2048], 0);
  assert.equal(t.device.stats.bytesWritten, 1024);
});

Deno.test("virtio-blk refuses requests past the capacity and misaligned lengths", () => {
  using t = setUp({ size: 4096 });
  const cases: Array<[number, number | bigint, number]> = [
    [VIRTIO_BLK_T.IN, 8, 512], // starts at the end
    [VIRTIO_BLK_T.IN, 7, 1024], // ends past the end
    [VIRTIO_BLK_T.IN, 0xffff_ffff_ffff_ffffn, 512], // would wrap around
    [VIRTIO_BLK_T.IN, 0, 100], // not whole sectors
    [VIRTIO_BLK_T.OUT, 8, 512],
  ];
  const statuses = cases.map(([type, sector, length]) => {
    const status = Uint8Array.of(0xff);
    if (type === VIRTIO_BLK_T.IN) {
      t.queue.add([blockHeader(type, sector)], [new Uint8Array(length), status]);
    } else t.queue.add([blockHeader(type, sector), new Uint8Array(length)], [status]);
    return status;
  });
  t.device.notify(0);
  assert.deepEqual(statuses.map((s) => s[0]), cases.map(() => VIRTIO_BLK_S.IOERR));
  assert.equal(t.device.stats.errors, cases.length);
  assert.ok(Deno.readFileSync(t.path).length === 4096);
});

Deno.test("a read-only virtio-blk answers writes and discards with IOERR and keeps the file", () => {
  using t = setUp({ readOnly: true, features: ALL_FEATURES });
  const before = Deno.readFileSync(t.path);
  const write = Uint8Array.of(0xff);
  t.queue.add([blockHeader(VIRTIO_BLK_T.OUT, 0), new Uint8Array(512).fill(7)], [write]);
  const discard = Uint8Array.of(0xff);
  t.queue.add([blockHeader(VIRTIO_BLK_T.DISCARD, 0), blockSegments({ sector: 0, sectors: 1 })], [
    discard,
  ]);
  const read = Uint8Array.of(0xff);
  t.queue.add([blockHeader(VIRTIO_BLK_T.IN, 0)], [new Uint8Array(512), read]);
  t.device.notify(0);
  assert.equal(write[0], VIRTIO_BLK_S.IOERR);
  assert.equal(discard[0], VIRTIO_BLK_S.IOERR);
  assert.equal(read[0], VIRTIO_BLK_S.OK);
  assert.deepEqual(Deno.readFileSync(t.path), before);
});

Deno.test("discard and write-zeroes read back as zeroes", () => {
  using t = setUp();
  const statuses = [Uint8Array.of(0xff), Uint8Array.of(0xff)];
  t.queue.add(
    [
      blockHeader(VIRTIO_BLK_T.DISCARD, 0),
      blockSegments({ sector: 8, sectors: 8 }, { sector: 32, sectors: 1 }),
    ],
    [statuses[0]],
  );
  t.queue.add(
    [
      blockHeader(VIRTIO_BLK_T.WRITE_ZEROES, 0),
      blockSegments({ sector: 40, sectors: 2 }, {
        sector: 64,
        sectors: 8,
        flags: WRITE_ZEROES_FLAG_UNMAP,
      }),
    ],
    [statuses[1]],
  );
  t.device.notify(0);
  assert.deepEqual(statuses.map((s) => s[0]), [VIRTIO_BLK_S.OK, VIRTIO_BLK_S.OK]);
  const readBack = new Uint8Array(65536);
  t.queue.add([blockHeader(VIRTIO_BLK_T.IN, 0)], [readBack, Uint8Array.of(0xff)]);
  t.device.notify(0);
  const zeroed = (from: number, sectors: number) =>
    readBack.subarray(from * 512, (from + sectors) * 512).every((b) => b === 0);
  assert.ok(zeroed(8, 8) && zeroed(32, 1) && zeroed(40, 2) && zeroed(64, 8));
  assert.equal(readBack[8 * 512 - 1], patternAt(8 * 512 - 1));
  assert.equal(readBack[16 * 512], patternAt(16 * 512));
  assert.equal(readBack[42 * 512], patternAt(42 * 512));
  assert.equal(t.device.stats.discards, 1);
  assert.equal(t.device.stats.writeZeroes, 1);
});

Deno.test("discard and write-zeroes refuse bad flags, bad sizes and ranges past the end", () => {
  using t = setUp({ size: 8192 });
  const send = (type: number, segments: Uint8Array) => {
    const status = Uint8Array.of(0xff);
    t.queue.add([blockHeader(type, 0), segments], [status]);
    return status;
  };
  const unmapDiscard = send(
    VIRTIO_BLK_T.DISCARD,
    blockSegments({ sector: 0, sectors: 1, flags: 1 }),
  );
  const reservedFlag = send(
    VIRTIO_BLK_T.WRITE_ZEROES,
    blockSegments({ sector: 0, sectors: 1, flags: 2 }),
  );
  const pastEnd = send(VIRTIO_BLK_T.DISCARD, blockSegments({ sector: 15, sectors: 2 }));
  const partial = send(VIRTIO_BLK_T.DISCARD, new Uint8Array(10));
  const tooMany = send(
    VIRTIO_BLK_T.DISCARD,
    blockSegments(...Array.from({ length: 33 }, () => ({ sector: 0, sectors: 1 }))),
  );
  t.device.notify(0);
  assert.equal(unmapDiscard[0], VIRTIO_BLK_S.UNSUPP);
  assert.equal(reservedFlag[0], VIRTIO_BLK_S.UNSUPP);
  assert.equal(pastEnd[0], VIRTIO_BLK_S.IOERR);
  assert.equal(partial[0], VIRTIO_BLK_S.IOERR);
  assert.equal(tooMany[0], VIRTIO_BLK_S.IOERR);
  assert.equal(Deno.readFileSync(t.path)[0], patternAt(0));
});

Deno.test("discard is unsupported when the driver did not negotiate it", () => {
  using t = setUp({ features: VIRTIO_F.VERSION_1 | VIRTIO_BLK_F.FLUSH });
  const status = Uint8Array.of(0xff);
  t.queue.add([blockHeader(VIRTIO_BLK_T.DISCARD, 0), blockSegments({ sector: 0, sectors: 1 })], [
    status,
  ]);
  t.device.notify(0);
  assert.equal(status[0], VIRTIO_BLK_S.UNSUPP);
  assert.equal(Deno.readFileSync(t.path)[1], patternAt(1));
});

Deno.test("GET_ID writes the 20-byte serial, and unknown types are UNSUPP", () => {
  using t = setUp();
  const id = new Uint8Array(20).fill(0xaa);
  const status = Uint8Array.of(0xff);
  const head = t.queue.add([blockHeader(VIRTIO_BLK_T.GET_ID, 0)], [id, status]);
  const unknown = Uint8Array.of(0xff);
  t.queue.add([blockHeader(99, 0)], [unknown]);
  t.device.notify(0);
  assert.equal(new TextDecoder().decode(id.subarray(0, 10)), "SERIAL-123");
  assert.ok(id.subarray(10).every((b) => b === 0));
  assert.equal(status[0], VIRTIO_BLK_S.OK);
  assert.deepEqual(t.queue.used[0], { head, written: 21 });
  assert.equal(unknown[0], VIRTIO_BLK_S.UNSUPP);
});

Deno.test("a request without a status byte fails the device; a short header gets IOERR", () => {
  using t = setUp();
  const status = Uint8Array.of(0xff);
  t.queue.add([new Uint8Array(8)], [status]);
  t.queue.add([blockHeader(VIRTIO_BLK_T.IN, 0)], []);
  t.queue.add([blockHeader(VIRTIO_BLK_T.FLUSH, 0)], [Uint8Array.of(0xff)]);
  t.device.notify(0);
  assert.equal(status[0], VIRTIO_BLK_S.IOERR);
  assert.equal(t.context.failures.length, 1);
  assert.match(t.context.failures[0], /no writable status byte/);
  assert.equal(t.queue.used.length, 1, "nothing is served after the failure");
  t.device.notify(0);
  assert.equal(t.queue.pendingCount, 1);
});

Deno.test("a chain the queue rejects fails the device instead of throwing", () => {
  using t = setUp();
  const queue = new FakeQueue();
  queue.pop = (): DescriptorChain | undefined => {
    throw new VirtQueueError("descriptor loop");
  };
  const context = new RecordingContext([queue], ALL_FEATURES);
  t.device.activate(context);
  assert.deepEqual(context.failures.length, 1);
  assert.match(context.failures[0], /descriptor loop/);
});

class RecordingDisk implements Disk {
  readonly path = "fake.img";
  readonly size = 1 << 20;
  readonly readOnly = false;
  readonly id = "fake";
  readonly calls: string[] = [];
  read(offset: number): void {
    this.calls.push(`read ${offset}`);
  }
  write(offset: number): void {
    this.calls.push(`write ${offset}`);
  }
  flush(): void {
    this.calls.push("flush");
  }
  discard(): void {}
  writeZeroes(_o: number, _l: number, _options?: WriteZeroesOptions): void {}
  resize(): void {}
  close(): void {}
}

Deno.test("FLUSH calls fdatasync on the disk before the request completes", () => {
  const disk = new RecordingDisk();
  const device = new VirtioBlock({ disk });
  const queue = new FakeQueue();
  const used: string[] = [];
  const push = queue.push.bind(queue);
  queue.push = (head, written) => {
    used.push(`used after ${disk.calls.join(",")}`);
    push(head, written);
  };
  device.activate(new RecordingContext([queue], ALL_FEATURES));
  queue.add([blockHeader(VIRTIO_BLK_T.OUT, 0), new Uint8Array(512)], [Uint8Array.of(0xff)]);
  queue.add([blockHeader(VIRTIO_BLK_T.FLUSH, 0)], [Uint8Array.of(0xff)]);
  device.notify(0);
  assert.deepEqual(used, ["used after write 0", "used after write 0,flush"]);
  assert.equal(device.stats.flushes, 1);
});

Deno.test("without VIRTIO_BLK_F_FLUSH every write is flushed (write-through)", () => {
  const disk = new RecordingDisk();
  const device = new VirtioBlock({ disk });
  const queue = new FakeQueue();
  device.activate(new RecordingContext([queue], VIRTIO_F.VERSION_1));
  queue.add([blockHeader(VIRTIO_BLK_T.OUT, 1), new Uint8Array(512)], [Uint8Array.of(0xff)]);
  device.notify(0);
  assert.deepEqual(disk.calls, ["write 512", "flush"]);
});

Deno.test("resize() changes the capacity and notifies a config change", () => {
  using t = setUp({ size: 4096 });
  t.device.resize(8192);
  const config = new Uint8Array(8);
  t.device.readConfig(0, config);
  assert.equal(new DataView(config.buffer).getBigUint64(0, true), 16n);
  assert.equal(t.context.configChanges, 1);
  const status = Uint8Array.of(0xff);
  t.queue.add([blockHeader(VIRTIO_BLK_T.IN, 15)], [new Uint8Array(512), status]);
  t.device.notify(0);
  assert.equal(status[0], VIRTIO_BLK_S.OK);
});

Deno.test("a throttled device stops popping and serves the held request first on retry", () => {
  const disk = new RecordingDisk();
  let allow = 1;
  const retries: Array<() => void> = [];
  const device = new VirtioBlock({
    disk,
    rateLimiter: { consume: () => allow-- > 0, retryDelayMs: () => 25 },
    scheduleRetry: (callback, delay) => {
      assert.equal(delay, 25);
      retries.push(callback);
      return () => {};
    },
  });
  const queue = new FakeQueue();
  device.activate(new RecordingContext([queue], ALL_FEATURES));
  for (let sector = 0; sector < 3; sector++) {
    queue.add([blockHeader(VIRTIO_BLK_T.IN, sector)], [new Uint8Array(512), Uint8Array.of(0xff)]);
  }
  device.notify(0);
  assert.deepEqual(disk.calls, ["read 0"]);
  assert.equal(queue.pendingCount, 1, "one chain is held, one never popped");
  device.notify(0);
  assert.equal(retries.length, 1, "notifications while throttled do not pop or re-arm");
  allow = 10;
  retries[0]();
  assert.deepEqual(disk.calls, ["read 0", "read 512", "read 1024"]);
  assert.deepEqual(queue.used.map((u) => u.head), [0, 1, 2]);
  assert.equal(device.stats.throttled, 1);
});

Deno.test("reset() cancels a pending retry and drops the held request", () => {
  const disk = new RecordingDisk();
  let cancelled = 0;
  const device = new VirtioBlock({
    disk,
    rateLimiter: { consume: () => false, retryDelayMs: () => 1 },
    scheduleRetry: () => () => cancelled++,
  });
  const queue = new FakeQueue();
  device.activate(new RecordingContext([queue], ALL_FEATURES));
  queue.add([blockHeader(VIRTIO_BLK_T.FLUSH, 0)], [Uint8Array.of(0xff)]);
  device.notify(0);
  device.reset();
  assert.equal(cancelled, 1);
  assert.deepEqual(disk.calls, []);
});

Deno.test("a serial longer than 20 bytes is refused", () => {
  assert.throws(
    () => new VirtioBlock({ disk: new RecordingDisk(), serial: "x".repeat(21) }),
    /at most 20/,
  );
});

Deno.test("virtio-blk serves a real split queue with indirect chains, data landing in guest RAM", () => {
  using t = setUp();
  const memory = GuestMemory.ofSize(1 << 20);
  const driver = new SplitQueueDriver(memory, {
    base: 0,
    size: 16,
    eventIdx: true,
    indirectEntries: 4,
  });
  const features = ALL_FEATURES | driver.features;
  const queue = new SplitQueue(memory, driver.config, { features });
  const context = new RecordingContext([queue], features);
  t.device.activate(context);
  memory.write(0x10000, blockHeader(VIRTIO_BLK_T.IN, 4));
  memory.writeU8(0x10010, 0xff);
  const head = driver.add([
    { address: 0x10000, length: 16 },
    { address: 0x20000, length: 1024, writable: true },
    { address: 0x10010, length: 1, writable: true },
  ], { indirect: true });
  driver.publish();
  t.device.notify(0);
  assert.deepEqual(driver.takeUsed(), [{ head, written: 1025 }]);
  assert.equal(memory.readU8(0x10010), VIRTIO_BLK_S.OK);
  assert.equal(memory.readU8(0x20000), patternAt(2048));
  assert.equal(memory.readU8(0x203ff), patternAt(3071));
  assert.deepEqual(context.usedInterrupts, [0]);
});
