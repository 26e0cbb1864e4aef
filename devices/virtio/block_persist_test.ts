import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import type { Disk } from "../../storage/disk.ts";
import { blockHeader } from "./_block_test_support.ts";
import { VirtioBlock, type VirtioBlockState } from "./block.ts";
import { VIRTIO_BLK_T } from "./block_request.ts";
import { VIRTIO_MMIO } from "./mmio_transport.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { BUFFER_BASE, mmioRig } from "./testing/mmio_rig.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

/** A disk in memory: the shared storage both machines open. */
function memoryDisk(size: number, readOnly = false): Disk & { bytes: Uint8Array } {
  const bytes = new Uint8Array(size);
  return {
    bytes,
    path: "/images/memory.raw",
    size,
    readOnly,
    id: "memory",
    read(offset, buffers) {
      for (const b of buffers) b.set(bytes.subarray(offset, offset += b.length));
    },
    write(offset, buffers) {
      for (const b of buffers) (bytes.set(b, offset), (offset += b.length));
    },
    flush() {},
    discard(offset, length) {
      bytes.fill(0, offset, offset + length);
    },
    writeZeroes(offset, length) {
      bytes.fill(0, offset, offset + length);
    },
    close() {},
  };
}

/** One 512-byte write allowed per second (bandwidth), on a fake clock, retries by hand. */
function block(disk: Disk, time: { now: number }, serial: string | undefined = "DISK-1") {
  const retries: Array<() => void> = [];
  const device = new VirtioBlock({
    disk,
    serial,
    rateLimiter: new RateLimiter({ bandwidth: { size: 512, refillTimeMs: 1000 } }, () => time.now),
    scheduleRetry: (callback) => (retries.push(callback), () => {}),
  });
  return { device, retries };
}

/** Writes request `n` (sector n, filled with n) into guest memory and submits it. */
function submitWrite(memory: GuestMemory, driver: { submit: (b: never[]) => number }, n: number) {
  const base = BUFFER_BASE + n * 0x1000;
  memory.slice(base, 16).set(blockHeader(VIRTIO_BLK_T.OUT, n));
  memory.slice(base + 0x100, 512).fill(n);
  return driver.submit([
    { address: base, length: 16 },
    { address: base + 0x100, length: 512 },
    { address: base + 0x800, length: 1, writable: true },
  ] as never[]);
}

function busySource(memory: GuestMemory, disk: Disk) {
  const time = { now: 0 };
  const { device } = block(disk, time);
  const rig = mmioRig(device, { memory });
  submitWrite(memory, rig.drivers[0], 1);
  submitWrite(memory, rig.drivers[0], 2);
  rig.writeRegister(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
  assert.equal(rig.drivers[0].takeUsed().length, 1, "the second write is throttled");
  return { rig, device };
}

Deno.test("virtio-blk: config, counters and the throttled request survive a restore", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const disk = memoryDisk(1 << 20);
  const source = busySource(memory, disk);
  const time = { now: 123_456 };
  const target = block(disk, time);
  const rig = mmioRig(target.device, { memory, start: false });
  const state = assertRoundTrip(source.rig.transport, rig.transport);
  const { rateLimiter: _, ...config } = state.transport.device as VirtioBlockState;
  assert.deepEqual(config, {
    version: 1,
    capacity: "0x800",
    readOnly: false,
    serial: "DISK-1",
    stats: source.device.stats,
  });
  assert.equal(target.device.stats.writes, 1);
  assert.equal(target.device.stats.throttled, 1);
  assert.equal(disk.bytes[2 * 512], 0, "the held write was not done");
  rig.transport.kick();
  time.now += 1000;
  target.retries.at(-1)!();
  assert.equal(disk.bytes[2 * 512], 2, "the restored device did the held write");
  assert.equal(target.device.stats.writes, 2);
  assert.deepEqual(source.rig.drivers[0].takeUsed().map((u) => u.written), [1]);
});

Deno.test("virtio-blk restore refuses another disk or serial", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const good = viaJson(busySource(memory, memoryDisk(1 << 20)).rig.transport.save());
  const cases: Array<[Disk, string, RegExp]> = [
    [
      memoryDisk(2 << 20),
      "DISK-1",
      /state\.transport\.device\.capacity: the saved disk had 2048 sectors/,
    ],
    // A read-only disk offers other features: the transport refuses before the device looks.
    [memoryDisk(1 << 20, true), "DISK-1", /state\.transport\.driverFeatures: .* not all offered/],
    [memoryDisk(1 << 20), "DISK-2", /state\.transport\.device\.serial/],
  ];
  for (const [disk, serial, message] of cases) {
    const rig = mmioRig(block(disk, { now: 0 }, serial).device, { memory, start: false });
    assert.throws(() => rig.transport.restore(good), message);
  }
});

Deno.test("virtio-blk restore keeps the saved serial when none was configured", () => {
  // The default serial is the image file's identity, which a rollback or a clone
  // changes: the guest keeps reading the one it saw at boot.
  const memory = GuestMemory.ofSize(1 << 21);
  const saved = viaJson(busySource(memory, memoryDisk(1 << 20)).rig.transport.save());
  const target = block(memoryDisk(1 << 20), { now: 0 }, undefined).device;
  const rig = mmioRig(target, { memory, start: false });
  rig.transport.restore(saved);
  assert.equal(target.save().serial, "DISK-1");
  const hostile = structuredClone(saved) as unknown as {
    transport: { device: { serial: string } };
  };
  hostile.transport.device.serial = "bad\u0001serial";
  const other = mmioRig(block(memoryDisk(1 << 20), { now: 0 }, undefined).device, {
    memory,
    start: false,
  });
  assert.throws(() => other.transport.restore(hostile), /device\.serial: .* is not a disk serial/);
});

Deno.test("virtio-blk restore refuses malformed state and changes nothing", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const disk = memoryDisk(1 << 20);
  const good = viaJson(busySource(memory, disk).rig.transport.save());
  const rig = mmioRig(block(disk, { now: 0 }).device, { memory, start: false });
  const report = fuzzRestore(rig.transport, good, {
    lenient: ["state.transport.queues[0].queue"],
  });
  assert.ok(report.refused > 100, `only ${report.refused} of ${report.tried} refused`);
});
