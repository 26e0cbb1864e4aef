import assert from "node:assert/strict";
import type { PciInterrupts } from "../pci/pci_device.ts";
import {
  FAKE_FEATURE,
  LAYOUT,
  logSink,
  QueueFactory,
  RecordingDevice,
} from "./_transport_test_support.ts";
import { VIRTIO_PCI_COMMON as C } from "./pci_common_config.ts";
import {
  PCI_CAP_ID_VENDOR,
  PciTransport,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_LAYOUT as L,
  VirtioPciError,
} from "./pci_transport.ts";
import type { NotifyRegion } from "./transport_state.ts";
import { VIRTIO_MSI_NO_VECTOR } from "./transport_state.ts";
import { VIRTIO_F, VIRTIO_STATUS } from "./virtio_device.ts";

const S = VIRTIO_STATUS;
const BAR = 0xc000_0000;

class FakePciInterrupts implements PciInterrupts {
  msixEnabled = false;
  readonly sent: number[] = [];
  intx = false;
  intxRaises = 0;

  msix(vector: number): boolean {
    if (!this.msixEnabled) return false;
    this.sent.push(vector);
    return true;
  }

  setIntx(high: boolean): void {
    if (high && !this.intx) this.intxRaises++;
    this.intx = high;
  }
}

function setup(device = new RecordingDevice()) {
  const factory = new QueueFactory();
  const sink = logSink();
  const transport = new PciTransport(device, {
    memory: factory.memory,
    createQueue: factory.create,
    log: sink.log,
  });
  const interrupts = new FakePciInterrupts();
  transport.attach(interrupts);
  transport.barMoved(0, BAR);
  const bar = transport.bars[0].device;
  const read = (offset: number, width: number): number => {
    const data = new Uint8Array(width);
    bar.read(offset, data);
    const view = new DataView(data.buffer);
    return width === 1 ? data[0] : width === 2 ? view.getUint16(0, true) : view.getUint32(0, true);
  };
  const write = (offset: number, width: number, value: number): void => {
    const data = new Uint8Array(width);
    const view = new DataView(data.buffer);
    if (width === 1) data[0] = value;
    else if (width === 2) view.setUint16(0, value, true);
    else view.setUint32(0, value, true);
    bar.write(offset, data);
  };
  return { transport, device, factory, sink, interrupts, read, write };
}

type Driver = ReturnType<typeof setup>;

/** Linux's virtio_pci_modern order (v6.1): reset, features, vectors, queues, enable, DRIVER_OK. */
function linuxProbe(d: Driver, msix: boolean, accepted = VIRTIO_F.VERSION_1 | FAKE_FEATURE) {
  const { read, write } = d;
  write(C.DEVICE_STATUS, 1, 0);
  assert.equal(read(C.DEVICE_STATUS, 1), 0);
  write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE);
  write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER);
  write(C.DEVICE_FEATURE_SELECT, 4, 0);
  const low = read(C.DEVICE_FEATURE, 4);
  write(C.DEVICE_FEATURE_SELECT, 4, 1);
  const high = read(C.DEVICE_FEATURE, 4);
  const features = ((BigInt(high) << 32n) | BigInt(low)) & accepted;
  write(C.DRIVER_FEATURE_SELECT, 4, 0);
  write(C.DRIVER_FEATURE, 4, Number(features & 0xffff_ffffn));
  write(C.DRIVER_FEATURE_SELECT, 4, 1);
  write(C.DRIVER_FEATURE, 4, Number(features >> 32n));
  write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  if (!(read(C.DEVICE_STATUS, 1) & S.FEATURES_OK)) return false;
  d.interrupts.msixEnabled = msix;
  if (msix) {
    write(C.CONFIG_MSIX_VECTOR, 2, 0);
    assert.equal(read(C.CONFIG_MSIX_VECTOR, 2), 0);
  }
  const queues = read(C.NUM_QUEUES, 2);
  for (let q = 0; q < queues; q++) {
    write(C.QUEUE_SELECT, 2, q);
    assert.ok(read(C.QUEUE_SIZE, 2) > 0);
    assert.equal(read(C.QUEUE_ENABLE, 2), 0);
    write(C.QUEUE_SIZE, 2, 64);
    const base = 0x10000 + q * 0x4000;
    write(C.QUEUE_DESC, 4, base);
    write(C.QUEUE_DESC + 4, 4, 0);
    write(C.QUEUE_DRIVER, 4, base + 0x1000);
    write(C.QUEUE_DRIVER + 4, 4, 0);
    write(C.QUEUE_DEVICE, 4, base + 0x2000);
    write(C.QUEUE_DEVICE + 4, 4, 0);
    assert.equal(read(C.QUEUE_NOTIFY_OFF, 2), q);
    if (msix) {
      write(C.QUEUE_MSIX_VECTOR, 2, q + 1);
      assert.equal(read(C.QUEUE_MSIX_VECTOR, 2), q + 1);
    }
  }
  for (let q = 0; q < queues; q++) {
    write(C.QUEUE_SELECT, 2, q);
    write(C.QUEUE_ENABLE, 2, 1);
  }
  write(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  return true;
}

Deno.test("the function identifies as a modern virtio device", () => {
  const { transport } = setup();
  assert.equal(transport.vendorId, 0x1af4);
  assert.equal(transport.deviceId, 0x1042);
  assert.equal(transport.subsystemVendorId, 0x1af4);
  assert.ok(transport.subsystemId >= 0x40);
  assert.equal(transport.revisionId, 1);
  assert.equal(transport.classCode, 0x010000);
  assert.deepEqual(
    transport.bars.map(({ index, size, kind }) => ({ index, size, kind })),
    [{ index: 0, size: 0x4000, kind: "mem64" }],
  );
  assert.deepEqual(transport.msix, { vectors: 3, bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 });
});

Deno.test("the vendor capabilities describe common, notify, ISR and device structures", () => {
  const { transport } = setup();
  const caps = transport.capabilities.map(({ id, body }) => {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    return {
      id,
      capLen: body[0],
      cfgType: body[1],
      bar: body[2],
      offset: view.getUint32(6, true),
      length: view.getUint32(10, true),
      multiplier: body.length > 14 ? view.getUint32(14, true) : undefined,
    };
  });
  const common = { id: PCI_CAP_ID_VENDOR, capLen: 16, bar: 0, multiplier: undefined };
  assert.deepEqual(caps, [
    { ...common, cfgType: VIRTIO_PCI_CAP.COMMON_CFG, offset: 0, length: 0x38 },
    { ...common, capLen: 20, cfgType: 2, offset: 0xc00, length: 8, multiplier: 4 },
    { ...common, cfgType: VIRTIO_PCI_CAP.ISR_CFG, offset: 0x800, length: 4 },
    { ...common, cfgType: VIRTIO_PCI_CAP.DEVICE_CFG, offset: 0x1000, length: 8 },
  ]);
});

Deno.test("a device without configuration gets no device capability", () => {
  const device = new RecordingDevice();
  Object.defineProperty(device, "configSize", { value: 0 });
  const { transport } = setup(device);
  assert.ok(transport.capabilities.every((cap) => cap.body[1] !== VIRTIO_PCI_CAP.DEVICE_CFG));
});

Deno.test("a device with too many queues is refused with a typed error", () => {
  const device = new RecordingDevice();
  Object.defineProperty(device, "queueSizes", { value: new Array(256).fill(64) });
  assert.throws(() => setup(device), VirtioPciError);
});

Deno.test("Linux's modern probe with MSI-X activates both queues", () => {
  const d = setup();
  assert.ok(linuxProbe(d, true));
  assert.equal(d.device.activations.length, 1);
  assert.deepEqual(d.factory.built.map((b) => b.config), [
    { size: 64, ...LAYOUT },
    { size: 64, descTable: 0x14000, availRing: 0x15000, usedRing: 0x16000 },
  ]);
  assert.equal(d.read(C.DEVICE_STATUS, 1) & S.DRIVER_OK, S.DRIVER_OK);
});

Deno.test("a driver without VERSION_1 is refused FEATURES_OK", () => {
  const d = setup();
  assert.equal(linuxProbe(d, false, FAKE_FEATURE), false);
  assert.equal(d.device.activations.length, 0);
});

Deno.test("MSI-X interrupts go to the vectors the driver assigned", () => {
  const d = setup();
  linuxProbe(d, true);
  const context = d.device.context;
  context.interrupt.usedBuffer(1);
  context.interrupt.usedBuffer(0);
  context.interrupt.configChanged();
  assert.deepEqual(d.interrupts.sent, [2, 1, 0]);
  assert.equal(d.interrupts.intxRaises, 0);
});

Deno.test("an MSI-X vector the function lacks reads back as NO_VECTOR and sends nothing", () => {
  const d = setup();
  linuxProbe(d, true);
  d.write(C.CONFIG_MSIX_VECTOR, 2, 3);
  assert.equal(d.read(C.CONFIG_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  d.device.context.interrupt.configChanged();
  assert.deepEqual(d.interrupts.sent, []);
});

Deno.test("without MSI-X, interrupts set ISR and raise INTx until the ISR is read", () => {
  const d = setup();
  linuxProbe(d, false);
  d.device.context.interrupt.usedBuffer(0);
  assert.equal(d.interrupts.intx, true);
  d.device.context.interrupt.configChanged();
  assert.equal(d.interrupts.intxRaises, 1);
  assert.equal(d.read(L.ISR, 1), 3);
  assert.equal(d.interrupts.intx, false);
  assert.equal(d.read(L.ISR, 1), 0);
  assert.deepEqual(d.interrupts.sent, []);
});

Deno.test("notify writes reach the device only after DRIVER_OK", () => {
  const d = setup();
  d.write(L.NOTIFY, 2, 0);
  assert.deepEqual(d.device.notified, []);
  linuxProbe(d, true);
  d.write(L.NOTIFY + 4, 2, 1);
  d.write(L.NOTIFY, 2, 0);
  assert.deepEqual(d.device.notified, [1, 0]);
});

Deno.test("status 0 resets the device, clears the ISR and lowers INTx", () => {
  const d = setup();
  linuxProbe(d, false);
  d.device.context.interrupt.usedBuffer(0);
  const resets = d.device.resets;
  d.write(C.DEVICE_STATUS, 1, 0);
  assert.equal(d.read(C.DEVICE_STATUS, 1), 0);
  assert.equal(d.device.resets, resets + 1);
  assert.equal(d.interrupts.intx, false);
  assert.equal(d.transport.isr, 0);
  d.write(C.QUEUE_SELECT, 2, 0);
  assert.equal(d.read(C.QUEUE_ENABLE, 2), 0);
  assert.equal(d.read(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
});

Deno.test("fail() shows DEVICE_NEEDS_RESET and sends the config vector", () => {
  const d = setup();
  linuxProbe(d, true);
  d.device.context.fail("descriptor index out of range");
  assert.equal(d.read(C.DEVICE_STATUS, 1) & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  assert.deepEqual(d.interrupts.sent, [0]);
});

Deno.test("64-bit queue addresses can be written with one 8-byte access", () => {
  const d = setup();
  d.write(C.QUEUE_SELECT, 2, 1);
  const data = new Uint8Array(8);
  new DataView(data.buffer).setBigUint64(0, 0x1_2345_6780n, true);
  d.transport.bars[0].device.write(C.QUEUE_DESC, data);
  assert.equal(d.read(C.QUEUE_DESC, 4), 0x2345_6780);
  assert.equal(d.read(C.QUEUE_DESC + 4, 4), 1);
});

Deno.test("common config accesses of the wrong width are ignored and logged once", () => {
  const d = setup();
  d.write(C.DEVICE_STATUS, 4, S.ACKNOWLEDGE);
  d.write(C.DEVICE_STATUS, 4, S.ACKNOWLEDGE);
  assert.equal(d.read(C.DEVICE_STATUS, 1), 0);
  assert.equal(d.read(C.QUEUE_SIZE, 4), 0);
  assert.equal(d.sink.lines.length, 2);
});

Deno.test("device configuration is served from offset 0x1000 with range checks", () => {
  const d = setup();
  assert.equal(d.read(L.DEVICE + 4, 4), 0x17161514);
  assert.equal(d.read(L.DEVICE + 6, 4), 0);
  d.write(L.DEVICE, 1, 0x99);
  assert.equal(d.device.config[0], 0x99);
});

Deno.test("config generation changes with the device configuration", () => {
  const d = setup();
  linuxProbe(d, true);
  const before = d.read(C.CONFIG_GENERATION, 1);
  d.device.context.interrupt.configChanged();
  assert.equal(d.read(C.CONFIG_GENERATION, 1), before + 1);
});

Deno.test("notify regions follow BAR 0 and listeners hear about moves", () => {
  const d = setup();
  const expected = (base: number): NotifyRegion[] => [
    { address: base + 0xc00, length: 2, datamatch: 0, queue: 0 },
    { address: base + 0xc04, length: 2, datamatch: 1, queue: 1 },
  ];
  assert.deepEqual(d.transport.notifyRegions(), expected(BAR));
  const heard: Array<[NotifyRegion[], NotifyRegion[]]> = [];
  const unsubscribe = d.transport.onNotifyRegionsChanged((now, old) => heard.push([now, old]));
  d.transport.barMoved(0, 0xc001_0000);
  d.transport.barMoved(0, 0xc001_0000); // no move, no event
  d.transport.barMoved(0, 0);
  assert.deepEqual(heard, [[expected(0xc001_0000), expected(BAR)], [[], expected(0xc001_0000)]]);
  unsubscribe();
  d.transport.barMoved(0, BAR);
  assert.equal(heard.length, 2);
});

Deno.test("with MSI-X on, a queue without a vector raises neither MSI-X nor INTx", () => {
  const d = setup();
  linuxProbe(d, true);
  d.write(C.QUEUE_SELECT, 2, 0);
  d.write(C.QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
  d.device.context.interrupt.usedBuffer(0);
  assert.deepEqual(d.interrupts.sent, []);
  assert.equal(d.interrupts.intxRaises, 0);
});
