import assert from "node:assert/strict";
import {
  FAKE_FEATURE,
  LAYOUT,
  logSink,
  QueueFactory,
  RecordingDevice,
} from "./_transport_test_support.ts";
import { TransportState, VIRTIO_MSI_NO_VECTOR } from "./transport_state.ts";
import { VIRTIO_F, VIRTIO_STATUS } from "./virtio_device.ts";

const S = VIRTIO_STATUS;

function setup(msixVectors = 0) {
  const device = new RecordingDevice();
  const factory = new QueueFactory();
  const sink = logSink();
  const interrupts = { used: [] as number[], config: 0 };
  let resets = 0;
  const state = new TransportState({
    device,
    memory: factory.memory,
    createQueue: factory.create,
    msixVectors,
    log: sink.log,
    interrupt: {
      usedBuffer: (q) => interrupts.used.push(q),
      configChanged: () => interrupts.config++,
    },
    onReset: () => resets++,
  });
  return { state, device, factory, sink, interrupts, resets: () => resets };
}

function acceptFeatures(state: TransportState, features: bigint): void {
  state.features.driverSelect = 0;
  state.features.writeDriver(Number(features & 0xffff_ffffn));
  state.features.driverSelect = 1;
  state.features.writeDriver(Number(features >> 32n));
}

function setupQueue(state: TransportState, index: number, size: number): void {
  state.queueSelect = index;
  state.writeQueueSize(size);
  state.writeQueueAddress("descTable", 0, LAYOUT.descTable + index * 0x4000);
  state.writeQueueAddress("availRing", 0, LAYOUT.availRing + index * 0x4000);
  state.writeQueueAddress("usedRing", 0, LAYOUT.usedRing + index * 0x4000);
  state.writeQueueReady(true);
}

/** Drives the state to DRIVER_OK with queue 0 enabled (queue 1 left disabled). */
function bringUp(state: TransportState): void {
  state.writeStatus(0);
  state.writeStatus(S.ACKNOWLEDGE);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  setupQueue(state, 0, 64);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
}

Deno.test("feature windows expose the offered 64 bits in 32-bit halves", () => {
  const { state, device } = setup();
  state.features.deviceSelect = 0;
  assert.equal(state.features.readDevice(), Number(device.features & 0xffff_ffffn));
  state.features.deviceSelect = 1;
  assert.equal(state.features.readDevice(), 1); // VERSION_1 is bit 32
  state.features.deviceSelect = 2;
  assert.equal(state.features.readDevice(), 0);
});

Deno.test("driver feature halves combine and read back", () => {
  const { state } = setup();
  acceptFeatures(state, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
  assert.equal(state.features.accepted, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
  state.features.driverSelect = 0;
  assert.equal(state.features.readDriver(), Number(FAKE_FEATURE));
});

Deno.test("FEATURES_OK sticks for an offered subset with VERSION_1", () => {
  const { state } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, VIRTIO_F.VERSION_1);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(state.status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
});

Deno.test("FEATURES_OK is refused for a driver without VERSION_1", () => {
  const { state, sink } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, FAKE_FEATURE);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(state.status & S.FEATURES_OK, 0);
  assert.match(sink.lines.join("\n"), /VERSION_1/);
});

Deno.test("FEATURES_OK is refused for features that were not offered", () => {
  const { state } = setup();
  acceptFeatures(state, VIRTIO_F.VERSION_1 | VIRTIO_F.RING_PACKED);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(state.status & S.FEATURES_OK, 0);
});

Deno.test("driver features written after FEATURES_OK are ignored", () => {
  const { state } = setup();
  acceptFeatures(state, VIRTIO_F.VERSION_1);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  state.features.driverSelect = 0;
  state.features.writeDriver(Number(FAKE_FEATURE));
  assert.equal(state.features.accepted, VIRTIO_F.VERSION_1);
});

Deno.test("DRIVER_OK activates the device with one queue per enabled queue", () => {
  const { state, device, factory } = setup();
  bringUp(state);
  assert.ok(state.activated);
  assert.equal(device.activations.length, 1);
  const context = device.context;
  assert.equal(context.features, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
  assert.equal(context.queues.length, 2);
  assert.equal(context.queues[0]?.size, 64);
  assert.equal(context.queues[1], undefined);
  assert.deepEqual(factory.built[0].config, { size: 64, ...LAYOUT });
  assert.equal(factory.built[0].features, VIRTIO_F.VERSION_1 | FAKE_FEATURE);
});

Deno.test("64-bit queue addresses are assembled from both halves", () => {
  const { state, factory } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, VIRTIO_F.VERSION_1);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  setupQueue(state, 1, 128);
  state.writeQueueAddress("usedRing", 1, 0x2);
  assert.equal(state.readQueueAddress("usedRing", 1), 2);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(factory.built[0].config.usedRing, 0x2_0000_0000 + LAYOUT.usedRing + 0x4000);
});

Deno.test("status 0 resets the device, the transport and the queues", () => {
  const { state, device, resets } = setup(3);
  bringUp(state);
  state.writeConfigMsixVector(1);
  const resetsBefore = device.resets;
  state.writeStatus(0);
  assert.equal(state.status, 0);
  assert.equal(state.activated, false);
  assert.equal(device.resets, resetsBefore + 1);
  assert.ok(resets() >= 1);
  assert.equal(state.features.accepted, 0n);
  assert.equal(state.configMsixVector, VIRTIO_MSI_NO_VECTOR);
  state.queueSelect = 0;
  assert.equal(state.readQueueReady(), false);
  assert.equal(state.readQueueSize(), 256);
  assert.equal(state.readQueueAddress("descTable", 0), 0);
});

Deno.test("a stale context cannot interrupt or fail the device after a reset", () => {
  const { state, device, interrupts } = setup();
  bringUp(state);
  const stale = device.context;
  state.writeStatus(0);
  stale.interrupt.usedBuffer(0);
  stale.fail("late");
  assert.deepEqual(interrupts.used, []);
  assert.equal(state.needsReset, false);
});

Deno.test("fail() sets DEVICE_NEEDS_RESET, sends one config interrupt and stops notify", () => {
  const { state, device, interrupts, sink } = setup();
  bringUp(state);
  device.context.fail("descriptor loop");
  device.context.fail("descriptor loop");
  assert.equal(state.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  assert.equal(interrupts.config, 1);
  assert.equal(sink.lines.filter((l) => l.includes("descriptor loop")).length, 1);
  state.notify(0);
  assert.deepEqual(device.notified, []);
  state.writeStatus(0);
  assert.equal(state.status, 0);
});

Deno.test("a queue the factory refuses puts the device in DEVICE_NEEDS_RESET", () => {
  const { state, device, factory } = setup();
  factory.refuse = "ring outside guest RAM";
  bringUp(state);
  assert.equal(device.activations.length, 0);
  assert.equal(state.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  assert.equal(state.activated, false);
});

Deno.test("queue sizes that are not powers of two or exceed the maximum are refused", () => {
  for (const size of [0, 3, 100, 512]) {
    const { state, device } = setup();
    state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
    acceptFeatures(state, VIRTIO_F.VERSION_1);
    state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    setupQueue(state, 0, size);
    state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    assert.equal(device.activations.length, 0, `size ${size}`);
    assert.ok(state.needsReset, `size ${size}`);
  }
});

Deno.test("a misaligned descriptor table is refused", () => {
  const { state, device } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, VIRTIO_F.VERSION_1);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  setupQueue(state, 0, 64);
  state.writeQueueAddress("descTable", 0, LAYOUT.descTable + 8);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(device.activations.length, 0);
  assert.ok(state.needsReset);
});

Deno.test("DRIVER_OK without FEATURES_OK is refused", () => {
  const { state, device } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.equal(device.activations.length, 0);
  assert.ok(state.needsReset);
});

Deno.test("notifications before DRIVER_OK or for disabled queues are ignored and logged once", () => {
  const { state, device, sink } = setup();
  state.notify(0);
  state.notify(0);
  assert.equal(sink.lines.length, 1);
  bringUp(state);
  state.notify(1);
  state.notify(1);
  state.notify(7);
  assert.equal(sink.lines.length, 2);
  state.notify(0);
  assert.deepEqual(device.notified, [0]);
});

Deno.test("queue configuration cannot change after DRIVER_OK", () => {
  const { state } = setup();
  bringUp(state);
  state.queueSelect = 0;
  state.writeQueueReady(false);
  assert.equal(state.readQueueReady(), true);
  state.writeQueueSize(16);
  state.writeQueueAddress("descTable", 0, 0);
  assert.equal(state.readQueueSize(), 64);
  assert.equal(state.readQueueAddress("descTable", 0), LAYOUT.descTable);
});

Deno.test("a queue that does not exist reads as size 0 and ignores writes", () => {
  const { state } = setup();
  state.queueSelect = 2;
  assert.equal(state.readQueueMaxSize(), 0);
  state.writeQueueSize(16);
  state.writeQueueReady(true);
  assert.equal(state.readQueueSize(), 0);
  assert.equal(state.readQueueReady(), false);
});

Deno.test("config accesses out of range read zeros, are ignored and logged once", () => {
  const { state, device, sink } = setup();
  const data = new Uint8Array(4).fill(0xaa);
  state.readConfig(6, data);
  assert.deepEqual([...data], [0, 0, 0, 0]);
  state.writeConfig(7, Uint8Array.of(1, 2));
  state.writeConfig(7, Uint8Array.of(1, 2));
  assert.equal(device.config[7], 0x17);
  state.readConfig(4, data);
  assert.deepEqual([...data], [0x14, 0x15, 0x16, 0x17]);
  assert.equal(sink.lines.length, 2);
});

Deno.test("configChanged bumps the generation and interrupts only after DRIVER_OK", () => {
  const { state, device, interrupts } = setup();
  state.configChanged();
  assert.equal(state.configGeneration, 1);
  assert.equal(interrupts.config, 0);
  bringUp(state);
  device.context.interrupt.configChanged();
  assert.equal(state.configGeneration, 2);
  assert.equal(interrupts.config, 1);
});

Deno.test("MSI-X vectors beyond the function's count read back as NO_VECTOR", () => {
  const { state } = setup(3);
  state.writeConfigMsixVector(2);
  assert.equal(state.configMsixVector, 2);
  state.writeConfigMsixVector(3);
  assert.equal(state.configMsixVector, VIRTIO_MSI_NO_VECTOR);
  state.queueSelect = 1;
  state.writeQueueMsixVector(1);
  assert.equal(state.readQueueMsixVector(), 1);
  assert.equal(state.queueMsixVector(1), 1);
  assert.equal(state.queueMsixVector(0), VIRTIO_MSI_NO_VECTOR);
});

Deno.test("clearing status bits without a reset is ignored", () => {
  const { state } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  state.writeStatus(S.ACKNOWLEDGE);
  assert.equal(state.status, S.ACKNOWLEDGE | S.DRIVER);
});

Deno.test("a device that throws from notify is failed instead of the VMM", () => {
  const { state, device } = setup();
  bringUp(state);
  device.notify = () => {
    throw new Error("boom");
  };
  state.notify(0);
  assert.ok(state.needsReset);
});

Deno.test("a queue can be disabled again before DRIVER_OK", () => {
  const { state } = setup();
  setupQueue(state, 1, 32);
  state.writeQueueReady(false);
  assert.equal(state.readQueueReady(), false);
});

Deno.test("a queue address beyond 2^53 is refused rather than rounded", () => {
  const { state, device } = setup();
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER);
  acceptFeatures(state, VIRTIO_F.VERSION_1);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  setupQueue(state, 0, 64);
  state.writeQueueAddress("availRing", 1, 0xffff_ffff);
  state.writeStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(device.activations.length, 0);
  assert.ok(state.needsReset);
});
