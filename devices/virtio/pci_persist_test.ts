import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { GuestMemory } from "../../core/guest_memory.ts";
import { PCI_MMIO_WINDOW_START } from "../../core/layout.ts";
import { PciConfigMechanism } from "../pci/config_mechanism.ts";
import { PciBus } from "../pci/pci_bus.ts";
import { FakeMsiController } from "../pci/testing/fakes.ts";
import { VIRTIO_PCI_COMMON as C } from "./pci_common_config.ts";
import { PciTransport, VIRTIO_PCI_LAYOUT as L } from "./pci_transport.ts";
import { createSplitQueue } from "./queue.ts";
import { VirtioRng } from "./rng.ts";
import { SplitQueueDriver } from "./testing/driver_harness.ts";
import { VIRTIO_F, VIRTIO_STATUS as S } from "./virtio_device.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

const BUFFERS = 0x80000;

/** A PCI bus with one virtio-rng function, reached through config space and the MMIO bus. */
function machine(memory: GuestMemory) {
  const mmio = new Bus();
  const msi = new FakeMsiController();
  const lines: Array<[number, boolean]> = [];
  const pci = new PciBus({ mmio, msi, setIrqLevel: (gsi, high) => lines.push([gsi, high]) });
  const rng = new VirtioRng({ fill: (bytes) => bytes.fill(0x5a) });
  const transport = new PciTransport(rng, { memory, createQueue: createSplitQueue, log: () => {} });
  const slot = pci.add(transport);
  const config = (register: number, width: number, value?: number) => {
    const data = new Uint8Array(width);
    const view = new DataView(data.buffer);
    if (value === undefined) {
      pci.readConfig(0, slot, 0, register, data);
      return width === 1
        ? data[0]
        : width === 2
        ? view.getUint16(0, true)
        : view.getUint32(0, true);
    }
    if (width === 1) data[0] = value;
    else if (width === 2) view.setUint16(0, value, true);
    else view.setUint32(0, value, true);
    pci.writeConfig(0, slot, 0, register, data);
    return 0;
  };
  const bar = () => (config(0x10, 4) & ~0xf) >>> 0;
  const mmioAccess = (offset: number, width: number, value?: number) => {
    const data = new Uint8Array(width);
    const view = new DataView(data.buffer);
    if (value === undefined) {
      mmio.read(bar() + offset, data);
      return width === 1
        ? data[0]
        : width === 2
        ? view.getUint16(0, true)
        : view.getUint32(0, true);
    }
    if (width === 1) data[0] = value;
    else if (width === 2) view.setUint16(0, value, true);
    else view.setUint32(0, value, true);
    mmio.write(bar() + offset, data);
    return 0;
  };
  return { pci, mmio, msi, lines, rng, transport, slot, config, mmioAccess };
}

/** The MSI-X capability's offset, found by walking the list as a driver does. */
function msixCap(m: ReturnType<typeof machine>): number {
  for (let at = m.config(0x34, 1); at !== 0; at = m.config(at + 1, 1)) {
    if (m.config(at, 1) === 0x11) return at;
  }
  throw new Error("no MSI-X capability");
}

/** Brings the device up as Linux does, with MSI-X, the BAR moved and one request served. */
function busySource(memory: GuestMemory) {
  const m = machine(memory);
  const { config, mmioAccess: io } = m;
  config(0x04, 2, 0); // decoding off while the BAR moves, as a kernel reassigning it would
  config(0x10, 4, PCI_MMIO_WINDOW_START + 0x10_0000);
  config(0x04, 2, 0x0406); // memory, bus master, INTx disabled
  const cap = msixCap(m);
  config(cap + 2, 2, 0x8000 | 0x4000); // MSI-X on, function masked while programming
  for (let v = 0; v < 2; v++) {
    io(L.MSIX_TABLE + v * 16, 4, 0xfee0_0000);
    io(L.MSIX_TABLE + v * 16 + 8, 4, 0x40 + v);
    io(L.MSIX_TABLE + v * 16 + 12, 4, v === 0 ? 0 : 1); // vector 1 stays masked
  }
  config(cap + 2, 2, 0x8000);
  io(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER);
  io(C.DRIVER_FEATURE_SELECT, 4, 1);
  io(C.DRIVER_FEATURE, 4, Number(VIRTIO_F.VERSION_1 >> 32n));
  io(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  io(C.CONFIG_MSIX_VECTOR, 2, 1);
  const driver = new SplitQueueDriver(memory, { base: 0x10000, size: 8 });
  io(C.QUEUE_SELECT, 2, 0);
  io(C.QUEUE_SIZE, 2, 8);
  io(C.QUEUE_MSIX_VECTOR, 2, 0);
  io(C.QUEUE_DESC, 4, driver.config.descTable);
  io(C.QUEUE_DRIVER, 4, driver.config.availRing);
  io(C.QUEUE_DEVICE, 4, driver.config.usedRing);
  io(C.QUEUE_ENABLE, 2, 1);
  io(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  driver.submit([{ address: BUFFERS, length: 32, writable: true }]);
  io(L.NOTIFY, 2, 0);
  assert.deepEqual(driver.takeUsed().map((u) => u.written), [32]);
  assert.equal(m.msi.routes[0].triggers, 1, "vector 0 fired");
  return { m, driver };
}

Deno.test("virtio-pci: config space, BAR, MSI-X and queue state survive a restore", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const source = busySource(memory);
  const target = machine(memory);
  const moved: number[] = [];
  target.transport.onNotifyRegionsChanged((regions) => moved.push(regions[0]?.address ?? 0));
  const state = assertRoundTrip(source.m.transport, target.transport);
  assert.equal(
    state.config?.bars[0].address,
    `0x${(PCI_MMIO_WINDOW_START + 0x10_0000).toString(16)}`,
  );
  assert.equal(
    (target.config(0x10, 4) & ~0xf) >>> 0,
    PCI_MMIO_WINDOW_START + 0x10_0000,
    "BAR moved",
  );
  assert.deepEqual(moved, [PCI_MMIO_WINDOW_START + 0x10_0000 + L.NOTIFY], "ioeventfds follow");
  assert.equal(target.config(0x04, 2), 0x0406);
  assert.deepEqual(target.msi.routes[0].message, {
    addressLo: 0xfee0_0000,
    addressHi: 0,
    data: 0x40,
  });
  assert.equal(target.msi.routes[1].message, undefined, "a masked vector carries no message");
  assert.equal(target.mmioAccess(C.CONFIG_MSIX_VECTOR, 2), 1);
  assert.equal(target.msi.routes[0].triggers, 0, "restoring fired nothing");
  source.driver.submit([{ address: BUFFERS + 0x100, length: 16, writable: true }]);
  target.mmioAccess(L.NOTIFY, 2, 0);
  assert.deepEqual(source.driver.takeUsed().map((u) => u.written), [16]);
  assert.equal(target.msi.routes[0].triggers, 1);
});

Deno.test("virtio-pci restore drives a saved INTx level onto the restored bus", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const source = machine(memory);
  source.transport.state.configChanged(); // no DRIVER_OK yet: nothing raised
  source.mmioAccess(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE);
  source.transport.state.fail("test"); // a broken device: its state is kept as is
  const target = machine(memory);
  const state = viaJson(source.transport.save());
  target.transport.restore({ ...state, isr: 2, config: { ...state.config!, intxLevel: true } });
  assert.deepEqual(target.lines.at(-1), [20 + ((target.slot + 0) % 4), true]);
  assert.equal(target.mmioAccess(L.ISR, 1), 2, "the ISR reads back, and reading clears it");
  assert.deepEqual(target.lines.at(-1)?.[1], false);
});

Deno.test("the PCI bus's host bridge and the config latch round-trip", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const source = machine(memory);
  source.pci.writeConfig(0, 0, 0, 0x04, Uint8Array.of(0x06, 0));
  source.pci.writeConfig(0, 0, 0, 0x0c, Uint8Array.of(0x10));
  const target = machine(memory);
  assertRoundTrip(source.pci, target.pci);
  const data = new Uint8Array(1);
  target.pci.readConfig(0, 0, 0, 0x0c, data);
  assert.equal(data[0], 0x10);
  const latch = new PciConfigMechanism(source.pci);
  latch.write(0, Uint8Array.of(0x10, 0x08, 0, 0x80));
  assertRoundTrip(latch, new PciConfigMechanism(target.pci));
  fuzzRestore(new PciConfigMechanism(target.pci), viaJson(latch.save()), {
    mustRefuse: [{ version: 1, address: 0x7000_0000 }, { version: 1, address: 0x8000_0001 }],
  });
});

Deno.test("virtio-pci restore refuses malformed state and changes nothing", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const good = viaJson(busySource(memory).m.transport.save());
  const target = machine(memory);
  const config = good.config!;
  const report = fuzzRestore(target.transport, good, {
    iterations: 400,
    lenient: ["state.transport.queues[0].queue", "state.config.msix"],
    mustRefuse: [
      { ...good, isr: 4 },
      { ...good, config: null },
      { ...good, config: { ...config, command: 0xffff } },
      { ...good, config: { ...config, bars: [{ index: 0, address: "0xc0000008" }] } },
      { ...good, config: { ...config, bars: [] } },
      { ...good, config: { ...config, capabilities: ["AAAA", null, null, null] } },
      {
        ...good,
        config: { ...config, msix: { ...config.msix!, pba: btoa("\x01" + "\0".repeat(7)) } },
      },
      { ...good, config: { ...config, msix: { ...config.msix!, table: btoa("x") } } },
      { ...good, transport: { ...good.transport, configMsixVector: 2 } }, // the function has 2
    ],
  });
  assert.ok(report.refused > 150, `only ${report.refused} of ${report.tried} refused`);
});
