import assert from "node:assert/strict";
import {
  FAKE_FEATURE,
  LAYOUT,
  logSink,
  QueueFactory,
  RecordingDevice,
} from "./_transport_test_support.ts";
import {
  mmioCmdlineFragment,
  MmioTransport,
  VIRTIO_MMIO,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VENDOR_ID,
} from "./mmio_transport.ts";
import { VIRTIO_F, VIRTIO_ID, VIRTIO_STATUS } from "./virtio_device.ts";

const R = VIRTIO_MMIO;
const S = VIRTIO_STATUS;
const BASE = 0xd000_0000;

function setup() {
  const device = new RecordingDevice();
  const factory = new QueueFactory();
  const sink = logSink();
  let edges = 0;
  const transport = new MmioTransport(device, {
    memory: factory.memory,
    createQueue: factory.create,
    base: BASE,
    irq: { trigger: () => edges++ },
    log: sink.log,
  });
  const read = (offset: number): number => {
    const data = new Uint8Array(4);
    transport.read(offset, data);
    return new DataView(data.buffer).getUint32(0, true);
  };
  const write = (offset: number, value: number): void => {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value, true);
    transport.write(offset, data);
  };
  return { transport, device, factory, sink, read, write, edges: () => edges };
}

type Driver = ReturnType<typeof setup>;

/** The register sequence of Linux's virtio_mmio probe and virtio core (v6.1). */
function linuxProbe(d: Driver, accepted = VIRTIO_F.VERSION_1 | FAKE_FEATURE): boolean {
  const { read, write } = d;
  assert.equal(read(R.MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
  assert.equal(read(R.VERSION), 2);
  assert.equal(read(R.DEVICE_ID), VIRTIO_ID.BLOCK);
  assert.equal(read(R.VENDOR_ID), VIRTIO_MMIO_VENDOR_ID);
  write(R.STATUS, 0);
  assert.equal(read(R.STATUS), 0);
  write(R.STATUS, S.ACKNOWLEDGE);
  write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  write(R.DEVICE_FEATURES_SEL, 1);
  const high = read(R.DEVICE_FEATURES);
  write(R.DEVICE_FEATURES_SEL, 0);
  const low = read(R.DEVICE_FEATURES);
  const offered = (BigInt(high) << 32n) | BigInt(low);
  const features = offered & accepted;
  write(R.DRIVER_FEATURES_SEL, 1);
  write(R.DRIVER_FEATURES, Number(features >> 32n));
  write(R.DRIVER_FEATURES_SEL, 0);
  write(R.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
  write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  if (!(read(R.STATUS) & S.FEATURES_OK)) {
    write(R.STATUS, read(R.STATUS) | S.FAILED);
    return false;
  }
  for (const [index, size] of [[0, 64], [1, 32]]) {
    write(R.QUEUE_SEL, index);
    assert.equal(read(R.QUEUE_READY), 0);
    assert.ok(read(R.QUEUE_NUM_MAX) >= size);
    write(R.QUEUE_NUM, size);
    const base = 0x10000 + index * 0x4000;
    write(R.QUEUE_DESC_LOW, base);
    write(R.QUEUE_DESC_HIGH, 0);
    write(R.QUEUE_DRIVER_LOW, base + 0x1000);
    write(R.QUEUE_DRIVER_HIGH, 0);
    write(R.QUEUE_DEVICE_LOW, base + 0x2000);
    write(R.QUEUE_DEVICE_HIGH, 0);
    write(R.QUEUE_READY, 1);
  }
  write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  return true;
}

Deno.test("Linux's virtio_mmio probe sequence activates the device with both queues", () => {
  const d = setup();
  assert.ok(linuxProbe(d));
  assert.equal(d.read(R.STATUS), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(d.device.activations.length, 1);
  assert.equal(d.device.context.features, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
  assert.deepEqual(d.factory.built.map((b) => b.config), [
    { size: 64, ...LAYOUT },
    { size: 32, descTable: 0x14000, availRing: 0x15000, usedRing: 0x16000 },
  ]);
});

Deno.test("a driver without VERSION_1 sees FEATURES_OK refused and no activation", () => {
  const d = setup();
  assert.equal(linuxProbe(d, FAKE_FEATURE), false);
  assert.equal(d.read(R.STATUS) & S.FEATURES_OK, 0);
  assert.equal(d.device.activations.length, 0);
});

Deno.test("QueueNotify reaches the device only after DRIVER_OK", () => {
  const d = setup();
  d.write(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(d.device.notified, []);
  linuxProbe(d);
  d.write(R.QUEUE_NOTIFY, 1);
  assert.deepEqual(d.device.notified, [1]);
});

Deno.test("writing status 0 resets the device and drops its queues", () => {
  const d = setup();
  linuxProbe(d);
  const resets = d.device.resets;
  d.write(R.STATUS, 0);
  assert.equal(d.read(R.STATUS), 0);
  assert.equal(d.device.resets, resets + 1);
  assert.equal(d.transport.state.activated, false);
  d.write(R.QUEUE_SEL, 0);
  assert.equal(d.read(R.QUEUE_READY), 0);
  d.write(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(d.device.notified, []);
});

Deno.test("used-buffer and config interrupts set InterruptStatus bits, one edge each", () => {
  const d = setup();
  linuxProbe(d);
  d.device.context.interrupt.usedBuffer(0);
  assert.equal(d.read(R.INTERRUPT_STATUS), 1);
  assert.equal(d.edges(), 1);
  d.device.context.interrupt.configChanged();
  assert.equal(d.read(R.INTERRUPT_STATUS), 3);
  assert.equal(d.edges(), 2);
  d.write(R.INTERRUPT_ACK, 1);
  assert.equal(d.read(R.INTERRUPT_STATUS), 2);
  d.write(R.INTERRUPT_ACK, 2);
  assert.equal(d.read(R.INTERRUPT_STATUS), 0);
  assert.equal(d.edges(), 2);
});

Deno.test("configChanged bumps ConfigGeneration", () => {
  const d = setup();
  linuxProbe(d);
  const before = d.read(R.CONFIG_GENERATION);
  d.device.context.interrupt.configChanged();
  assert.equal(d.read(R.CONFIG_GENERATION), before + 1);
});

Deno.test("fail() sets DEVICE_NEEDS_RESET with a config interrupt", () => {
  const d = setup();
  linuxProbe(d);
  d.device.context.fail("used ring outside guest RAM");
  assert.equal(d.read(R.STATUS) & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  assert.equal(d.read(R.INTERRUPT_STATUS), 2);
  assert.equal(d.edges(), 1);
  d.write(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(d.device.notified, []);
});

Deno.test("device configuration is read and written from 0x100 at any width", () => {
  const d = setup();
  const byte = new Uint8Array(1);
  d.transport.read(R.CONFIG + 3, byte);
  assert.equal(byte[0], 0x13);
  assert.equal(d.read(R.CONFIG + 4), 0x17161514);
  d.transport.write(R.CONFIG + 1, Uint8Array.of(0xee, 0xff));
  assert.deepEqual([...d.device.config.subarray(0, 4)], [0x10, 0xee, 0xff, 0x13]);
});

Deno.test("configuration accesses past configSize read zeros and are logged once", () => {
  const d = setup();
  assert.equal(d.read(R.CONFIG + 6), 0);
  assert.equal(d.read(R.CONFIG + 0x800), 0);
  d.write(R.CONFIG + 8, 0xffffffff);
  assert.equal(d.sink.lines.length, 2); // one read offence, one write offence
});

Deno.test("registers accessed with a width other than 32 bits are ignored", () => {
  const d = setup();
  const half = new Uint8Array(2).fill(0xaa);
  d.transport.read(R.MAGIC_VALUE, half);
  assert.deepEqual([...half], [0, 0]);
  d.transport.write(R.STATUS, Uint8Array.of(S.ACKNOWLEDGE));
  assert.equal(d.read(R.STATUS), 0);
  assert.equal(d.sink.lines.length, 1);
});

Deno.test("QueueNumMax reads 0 for queues the device does not have", () => {
  const d = setup();
  d.write(R.QUEUE_SEL, 0);
  assert.equal(d.read(R.QUEUE_NUM_MAX), 256);
  d.write(R.QUEUE_SEL, 2);
  assert.equal(d.read(R.QUEUE_NUM_MAX), 0);
});

Deno.test("shared memory regions read as absent", () => {
  const d = setup();
  d.write(R.SHM_SEL, 0);
  assert.equal(d.read(R.SHM_LEN_LOW), 0xffff_ffff);
  assert.equal(d.read(R.SHM_LEN_HIGH), 0xffff_ffff);
});

Deno.test("notifyRegions describes QueueNotify with a datamatch per queue", () => {
  const d = setup();
  assert.deepEqual(d.transport.notifyRegions(), [
    { address: BASE + 0x50, length: 4, datamatch: 0, queue: 0 },
    { address: BASE + 0x50, length: 4, datamatch: 1, queue: 1 },
  ]);
});

Deno.test("mmioCmdlineFragment uses Linux's virtio_mmio.device syntax", () => {
  assert.equal(mmioCmdlineFragment(0xd000_0000, 5), "virtio_mmio.device=4K@0xd0000000:5");
  assert.equal(mmioCmdlineFragment(0xd000_1000, 11), "virtio_mmio.device=4K@0xd0001000:11");
});

Deno.test("ioeventfd notifications routed through the transport respect DRIVER_OK", () => {
  const d = setup();
  d.transport.notify(0);
  linuxProbe(d);
  d.transport.notify(0);
  assert.deepEqual(d.device.notified, [0]);
});
