/**
 * A hostile driver against two virtio-mmio devices on one machine's buses: it breaks the
 * disk every way the issue lists, and the VMM must survive, put that device (only) in
 * DEVICE_NEEDS_RESET, log each offence once, and keep the entropy device working. The
 * driver side here does exactly what a guest does: register writes on the MMIO bus and
 * descriptor tables in guest memory.
 */
import assert from "node:assert/strict";
import { Bus } from "../core/bus.ts";
import { GuestMemory } from "../core/guest_memory.ts";
import { createSplitQueue } from "../devices/virtio/queue.ts";
import { MmioTransport, VIRTIO_MMIO } from "../devices/virtio/mmio_transport.ts";
import { VirtioBlock } from "../devices/virtio/block.ts";
import { VirtioRng } from "../devices/virtio/rng.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { VIRTIO_STATUS } from "../devices/virtio/virtio_device.ts";
import type { Disk } from "../storage/disk.ts";

const RAM = 16 * 1024 * 1024;
const BLK = 0xd0000000;
const RNG = 0xd0001000;
const { ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, DEVICE_NEEDS_RESET } = VIRTIO_STATUS;

/** A 1 MiB in-memory disk. */
function memoryDisk(): Disk {
  const bytes = new Uint8Array(1024 * 1024);
  return {
    path: "memory",
    size: bytes.length,
    readOnly: false,
    id: "memdisk",
    read(offset, buffers) {
      for (const b of buffers) {
        b.set(bytes.subarray(offset, offset + b.length));
        offset += b.length;
      }
    },
    write(offset, buffers) {
      for (const b of buffers) {
        bytes.set(b, offset);
        offset += b.length;
      }
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

class Machine {
  readonly memory = GuestMemory.ofSize(RAM);
  readonly bus = new Bus();
  readonly log: string[] = [];
  readonly interrupts = new Map<number, number>();

  add(base: number, device: VirtioBlock | VirtioRng): MmioTransport {
    const transport = new MmioTransport(device, {
      memory: this.memory,
      createQueue: createSplitQueue,
      base,
      irq: { trigger: () => this.interrupts.set(base, (this.interrupts.get(base) ?? 0) + 1) },
      log: (message) => this.log.push(message),
    });
    this.bus.insert(base, 0x1000, device.name, transport);
    return transport;
  }

  read32(address: number): number {
    const data = new Uint8Array(4);
    assert.ok(this.bus.read(address, data));
    return new DataView(data.buffer).getUint32(0, true);
  }

  write32(address: number, value: number): void {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value >>> 0, true);
    assert.ok(this.bus.write(address, data));
  }

  /** A Linux-like bring-up of queue 0 at `ring` with `size` entries; returns its driver. */
  start(base: number, ring: number, size = 16, queueNum = size): SplitQueueDriver {
    const reg = (offset: number) => base + offset;
    this.write32(reg(VIRTIO_MMIO.STATUS), 0);
    this.write32(reg(VIRTIO_MMIO.STATUS), ACKNOWLEDGE);
    this.write32(reg(VIRTIO_MMIO.STATUS), ACKNOWLEDGE | DRIVER);
    this.write32(reg(VIRTIO_MMIO.DRIVER_FEATURES_SEL), 1);
    this.write32(reg(VIRTIO_MMIO.DRIVER_FEATURES), 1); // VIRTIO_F_VERSION_1
    this.write32(reg(VIRTIO_MMIO.DRIVER_FEATURES_SEL), 0);
    this.write32(reg(VIRTIO_MMIO.DRIVER_FEATURES), 0);
    this.write32(reg(VIRTIO_MMIO.STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK);
    const driver = new SplitQueueDriver(this.memory, { base: ring, size });
    this.write32(reg(VIRTIO_MMIO.QUEUE_SEL), 0);
    this.write32(reg(VIRTIO_MMIO.QUEUE_NUM), queueNum);
    this.write32(reg(VIRTIO_MMIO.QUEUE_DESC_LOW), driver.config.descTable);
    this.write32(reg(VIRTIO_MMIO.QUEUE_DRIVER_LOW), driver.config.availRing);
    this.write32(reg(VIRTIO_MMIO.QUEUE_DEVICE_LOW), driver.config.usedRing);
    this.write32(reg(VIRTIO_MMIO.QUEUE_READY), 1);
    this.write32(reg(VIRTIO_MMIO.STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    return driver;
  }

  status(base: number): number {
    return this.read32(base + VIRTIO_MMIO.STATUS);
  }

  notify(base: number): void {
    this.write32(base + VIRTIO_MMIO.QUEUE_NOTIFY, 0);
  }
}

/** The rng still hands out 32 fresh bytes through its own queue. */
function assertRngWorks(m: Machine, rng: SplitQueueDriver, buffer: number): void {
  m.memory.fill(buffer, 32);
  rng.submit([{ address: buffer, length: 32, writable: true }]);
  m.notify(RNG);
  const used = rng.takeUsed();
  assert.equal(used.length, 1);
  assert.equal(used[0].written, 32);
  assert.ok(m.memory.read(buffer, 32).some((b) => b !== 0), "random bytes arrived");
}

/** A read request (header, data, status) whose descriptors the test then corrupts. */
function blkRead(blk: SplitQueueDriver, at: number): number {
  return blk.submit([
    { address: at, length: 16 },
    { address: at + 0x100, length: 512, writable: true },
    { address: at + 0x400, length: 1, writable: true },
  ]);
}

Deno.test("a hostile driver breaks only its own device; the VMM and the other device carry on", () => {
  const m = new Machine();
  m.add(BLK, new VirtioBlock({ disk: memoryDisk(), name: "vda" }));
  m.add(RNG, new VirtioRng());
  const rng = m.start(RNG, 0x100000);
  assertRngWorks(m, rng, 0x180000);

  const offences: Array<[string, (blk: SplitQueueDriver) => void, RegExp]> = [
    ["descriptor loop", (blk) => {
      const head = blkRead(blk, 0x300000);
      // The status descriptor chains back to the data descriptor: head -> 1 -> 2 -> 1 ...
      blk.writeDescriptor(head + 2, { address: 0x300400, length: 1, flags: 3, next: head + 1 });
      m.notify(BLK);
    }, /it loops/],
    ["address outside RAM", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head + 1, { address: 0xd0000000, length: 512, flags: 3, next: head + 2 });
      m.notify(BLK);
    }, /512 bytes at 0xd0000000 that is not inside one guest RAM region/],
    ["address past 2^52", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head, { address: 2 ** 52, length: 16, flags: 1, next: head + 1 });
      m.notify(BLK);
    }, /at 0x10000000000000 that is not inside one guest RAM region/],
    ["buffer running off the end of RAM", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head + 1, { address: RAM - 256, length: 512, flags: 3, next: head + 2 });
      m.notify(BLK);
    }, /at 0xffff00 that is not inside one guest RAM region/],
    ["zero-length buffer", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head + 1, { address: 0x300100, length: 0, flags: 3, next: head + 2 });
      m.notify(BLK);
    }, /zero-length buffer/],
    ["writable buffer before a readable one", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head, { address: 0x300000, length: 16, flags: 3, next: head + 1 });
      blk.writeDescriptor(head + 1, { address: 0x300100, length: 512, flags: 1, next: head + 2 });
      m.notify(BLK);
    }, /device-readable buffer after a device-writable one/],
    ["status byte the device may not write", (blk) => {
      const head = blkRead(blk, 0x300000);
      blk.writeDescriptor(head + 1, { address: 0x300100, length: 512, flags: 1, next: head + 2 });
      blk.writeDescriptor(head + 2, { address: 0x300400, length: 1, flags: 0, next: 0 });
      m.notify(BLK);
    }, /no writable status byte/],
    ["avail index far ahead", (blk) => {
      blk.setAvailIdx(blk.availIdx + 1000);
      m.notify(BLK);
    }, /the driver corrupted the ring/],
  ];

  for (const [offence, commit, logged] of offences) {
    const blk = m.start(BLK, 0x200000);
    assert.equal(m.status(BLK) & DEVICE_NEEDS_RESET, 0, `${offence}: a fresh start is healthy`);
    const before = m.interrupts.get(BLK) ?? 0;
    commit(blk);
    const failed = (m.status(BLK) & DEVICE_NEEDS_RESET) !== 0;
    const used = blk.takeUsed();
    // Either the device failed the request (status IOERR, chain returned) or itself.
    assert.ok(
      failed || (used.length === 1 && m.memory.readU8(0x300400) !== 0),
      `${offence}: the request or the device fails (status ${m.status(BLK)})`,
    );
    if (failed) assert.ok((m.interrupts.get(BLK) ?? 0) > before, `${offence}: driver told`);
    assert.match(m.log.at(-1) ?? "", logged, `${offence}: the offence is named in the log`);
    assertRngWorks(m, rng, 0x180000);
  }

  // The same offence again is not logged again: a guest cannot flood the host's log.
  const [, loop] = offences[0];
  loop(m.start(BLK, 0x200000));
  assert.notEqual(m.status(BLK) & DEVICE_NEEDS_RESET, 0);
  assert.equal(m.log.filter((line) => /it loops/.test(line)).length, 1);

  // Not a power of two: the queue is refused and the device needs a reset.
  m.start(BLK, 0x200000, 16, 100);
  assert.notEqual(m.status(BLK) & DEVICE_NEEDS_RESET, 0, "queue size 100 refused");
  assertRngWorks(m, rng, 0x180000);

  // A notification before DRIVER_OK and config accesses past the end are ignored.
  m.write32(BLK + VIRTIO_MMIO.STATUS, 0);
  m.notify(BLK);
  m.write32(BLK + VIRTIO_MMIO.CONFIG + 0xe00, 0xdeadbeef);
  assert.equal(m.read32(BLK + VIRTIO_MMIO.CONFIG + 0xe00), 0);

  // After all that, a well-behaved driver gets a working disk back.
  const blk = m.start(BLK, 0x200000);
  blkRead(blk, 0x300000);
  m.memory.writeU32(0x300000, 0); // VIRTIO_BLK_T_IN, sector 0
  m.memory.writeU64(0x300008, 0n);
  m.memory.writeU8(0x300400, 0xee);
  m.notify(BLK);
  assert.equal(blk.takeUsed().length, 1);
  assert.equal(m.memory.readU8(0x300400), 0, "VIRTIO_BLK_S_OK");

  // Each kind of offence was logged, none of them over and over.
  const counts = new Map<string, number>();
  for (const line of m.log) counts.set(line, (counts.get(line) ?? 0) + 1);
  assert.ok(m.log.length > 0, "offences were logged");
  for (const [line, count] of counts) assert.equal(count, 1, `logged ${count} times: ${line}`);
});
