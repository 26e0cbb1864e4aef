import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { PCI_MMIO_WINDOW_START } from "../../core/layout.ts";
import { PciConfigMechanism } from "./config_mechanism.ts";
import { PciBus } from "./pci_bus.ts";
import type { PciCapability } from "./pci_device.ts";
import { PciConfigError } from "./pci_registers.ts";
import {
  type Conf1Slot,
  conf1Slot,
  FakeMsiController,
  RecordingDevice,
  testFunction,
} from "./testing/fakes.ts";

function setup(options: { pio?: Bus } = {}) {
  const mmio = new Bus();
  const logs: string[] = [];
  const bus = new PciBus({
    mmio,
    pio: options.pio,
    msi: new FakeMsiController(),
    setIrqLevel() {},
    log: (message) => logs.push(message),
  });
  const ports = new PciConfigMechanism(bus);
  return { mmio, bus, ports, logs, slot: (n: number) => conf1Slot(ports, n) };
}

/** Linux's pci_find_capability(): the status bit, then a bounded walk from 0x34. */
function findCapability(cfg: Conf1Slot, id: number, from?: number): number | undefined {
  if ((cfg.read16(0x06) & 0x10) === 0) return undefined;
  let pos = from === undefined ? cfg.read8(0x34) : cfg.read8(from + 1);
  for (let ttl = 48; ttl > 0; ttl--) {
    pos &= ~3;
    if (pos < 0x40) return undefined;
    const capId = cfg.read8(pos);
    if (capId === 0xff) return undefined;
    if (capId === id) return pos;
    pos = cfg.read8(pos + 1);
  }
  return undefined;
}

function vendorCap(bytes: number[], onWrite?: PciCapability["onWrite"]): PciCapability {
  return { id: 0x09, body: Uint8Array.from(bytes), onWrite };
}

Deno.test("PciBus gives functions slots 1-31 and refuses a 32nd", () => {
  const { bus } = setup();
  for (let i = 1; i <= 31; i++) assert.equal(bus.add(testFunction()), i);
  assert.throws(() => bus.add(testFunction()), PciConfigError);
  assert.throws(() => bus.add(testFunction()), /no free slot.*at most 31 PCI devices/);
});

Deno.test("PciBus builds a type-0 header from the function's identity", () => {
  const { bus, slot } = setup();
  bus.add(testFunction({ interruptPin: 2 }));
  const cfg = slot(1);
  assert.equal(cfg.read16(0x00), 0x1af4, "vendor");
  assert.equal(cfg.read16(0x02), 0x1042, "device");
  assert.equal(cfg.read32(0x08), 0x0100_0001, "class 01:00:00, revision 1");
  assert.equal(cfg.read8(0x0e), 0x00, "header type 0, single function");
  assert.equal(cfg.read16(0x2c), 0x1af4, "subsystem vendor");
  assert.equal(cfg.read16(0x2e), 0x1100, "subsystem");
  assert.equal(cfg.read8(0x3d), 2, "interrupt pin INTB#");
  assert.equal(cfg.read8(0x3c), 22, "interrupt line: GSI 20 + (1 + 2 - 1) % 4");
  assert.equal(cfg.read16(0x06) & 0x10, 0, "no capabilities, no capability bit");
  assert.equal(cfg.read32(0x30), 0, "no expansion ROM");
});

Deno.test("PciBus places memory BARs in the MMIO window, aligned to their size, decoding on", () => {
  const { bus, mmio, slot } = setup();
  const small = new RecordingDevice();
  const big = new RecordingDevice();
  const first = testFunction({ bars: [{ index: 0, size: 0x1000, kind: "mem32", device: small }] });
  const second = testFunction({ bars: [{ index: 2, size: 0x4000, kind: "mem64", device: big }] });
  bus.add(first);
  bus.add(second);
  assert.equal(slot(1).read32(0x10), PCI_MMIO_WINDOW_START);
  assert.equal(slot(2).read32(0x18), PCI_MMIO_WINDOW_START + 0x4004, "aligned up, 64-bit type");
  assert.equal(slot(2).read32(0x1c), 0, "high dword");
  assert.equal(slot(2).read16(0x04) & 0x2, 0x2, "memory decoding on");
  assert.deepEqual(first.moves, [{ index: 0, address: PCI_MMIO_WINDOW_START }]);
  assert.deepEqual(second.moves, [{ index: 2, address: PCI_MMIO_WINDOW_START + 0x4000 }]);
  const data = new Uint8Array(4);
  assert.ok(mmio.read(PCI_MMIO_WINDOW_START + 0x4010, data));
  assert.deepEqual(big.reads, [{ offset: 0x10, length: 4 }]);
  assert.equal(mmio.find(PCI_MMIO_WINDOW_START + 0x1000), undefined, "the alignment gap is free");
});

Deno.test("PciBus BAR sizing: all-ones writes read back the size mask and unmap nothing while decoding is off", () => {
  const { bus, mmio, slot } = setup();
  const fn = testFunction({
    bars: [
      { index: 0, size: 0x4000, kind: "mem64", prefetchable: true, device: new RecordingDevice() },
      { index: 2, size: 0x1000, kind: "mem32", device: new RecordingDevice() },
    ],
  });
  bus.add(fn);
  const cfg = slot(1);
  const original = [cfg.read32(0x10), cfg.read32(0x14), cfg.read32(0x18)];
  cfg.write16(0x04, 0); // Linux turns decoding off around sizing
  assert.equal(mmio.ranges.length, 0);
  for (const reg of [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24]) cfg.write32(reg, 0xffff_ffff);
  assert.equal(cfg.read32(0x10), 0xffff_c00c, "size mask, prefetchable, 64-bit");
  assert.equal(cfg.read32(0x14), 0xffff_ffff, "upper dword: all address bits");
  assert.equal(cfg.read32(0x18), 0xffff_f000, "32-bit BAR: size mask, type 0");
  assert.equal(cfg.read32(0x1c), 0, "unimplemented BAR stays 0");
  assert.equal(cfg.read32(0x24), 0);
  cfg.write32(0x10, original[0]);
  cfg.write32(0x14, original[1]);
  cfg.write32(0x18, original[2]);
  cfg.write16(0x04, 0x2);
  assert.deepEqual(mmio.ranges.map((r) => r.base), [
    PCI_MMIO_WINDOW_START,
    PCI_MMIO_WINDOW_START + 0x4000,
  ]);
  assert.deepEqual(fn.moves.slice(-4), [
    { index: 0, address: 0 },
    { index: 2, address: 0 },
    { index: 0, address: PCI_MMIO_WINDOW_START },
    { index: 2, address: PCI_MMIO_WINDOW_START + 0x4000 },
  ]);
});

Deno.test("PciBus keeps a BAR's low flag bits read-only", () => {
  const { bus, slot } = setup();
  bus.add(
    testFunction({
      bars: [{ index: 1, size: 0x1000, kind: "mem32", device: new RecordingDevice() }],
    }),
  );
  slot(1).write32(0x14, 0xc010_000f);
  assert.equal(slot(1).read32(0x14), 0xc010_0000);
});

Deno.test("PciBus moves a BAR on the MMIO bus when the guest reprograms it with decoding on", () => {
  const { bus, mmio, slot } = setup();
  const device = new RecordingDevice();
  const fn = testFunction({ bars: [{ index: 0, size: 0x2000, kind: "mem32", device }] });
  bus.add(fn);
  slot(1).write32(0x10, 0xc800_0000);
  assert.equal(mmio.find(PCI_MMIO_WINDOW_START), undefined, "old range removed");
  assert.equal(mmio.find(0xc800_1fff)?.device !== undefined, true);
  mmio.write(0xc800_0104, Uint8Array.of(7));
  assert.deepEqual(device.writes, [{ offset: 0x104, bytes: [7] }]);
  assert.deepEqual(fn.moves.at(-1), { index: 0, address: 0xc800_0000 });
});

Deno.test("PciBus maps a 64-bit BAR above 4 GiB once both halves are written", () => {
  const { bus, mmio, slot } = setup();
  const fn = testFunction({
    bars: [{ index: 0, size: 0x4000, kind: "mem64", device: new RecordingDevice() }],
  });
  bus.add(fn);
  const cfg = slot(1);
  cfg.write16(0x04, 0);
  cfg.write32(0x10, 0x0000_8000);
  cfg.write32(0x14, 0x0000_0010);
  cfg.write16(0x04, 0x2);
  assert.equal(mmio.ranges[0].base, 0x10_0000_8000);
  assert.deepEqual(fn.moves.at(-1), { index: 0, address: 0x10_0000_8000 });
});

Deno.test("PciBus refuses a BAR placement that overlaps another range, logs once and leaves it unmapped", () => {
  const { bus, mmio, slot, logs } = setup();
  const other = new RecordingDevice();
  mmio.insert(0xd000_0000, 0x1000, "virtio-mmio", other);
  const fn = testFunction({
    bars: [{ index: 0, size: 0x1000, kind: "mem32", device: new RecordingDevice() }],
  });
  bus.add(fn);
  slot(1).write32(0x10, 0xd000_0000);
  slot(1).write16(0x04, 0);
  slot(1).write16(0x04, 0x2); // the same refused placement again: no second log line
  assert.equal(mmio.find(0xd000_0000)?.device, other);
  assert.equal(mmio.ranges.length, 1, "the BAR is not on the bus");
  assert.equal(logs.length, 1);
  assert.match(
    logs[0],
    /00:01\.0: the guest placed BAR 0 at 0xd0000000 \(\+0x1000\) where it overlaps virtio-mmio;/,
  );
  assert.deepEqual(fn.moves.at(-1), { index: 0, address: 0 });
  slot(1).write32(0x10, 0xc100_0000);
  assert.equal(mmio.find(0xc100_0000)?.name, "00:01.0 BAR 0");
  assert.deepEqual(fn.moves.at(-1), { index: 0, address: 0xc100_0000 });
});

Deno.test("PciBus programs I/O BARs and maps them on the port bus while I/O decoding is on", () => {
  const pio = new Bus();
  const { bus, slot } = setup({ pio });
  const device = new RecordingDevice();
  const fn = testFunction({ bars: [{ index: 4, size: 0x20, kind: "io", device }] });
  bus.add(fn);
  const cfg = slot(1);
  assert.equal(cfg.read32(0x20), 0x1, "unassigned I/O BAR: address 0, I/O space bit");
  cfg.write32(0x20, 0xffff_ffff);
  assert.equal(cfg.read32(0x20), 0xffff_ffe1);
  cfg.write32(0x20, 0xc040);
  assert.equal(pio.find(0xc040)?.name, "00:01.0 BAR 4");
  pio.read(0xc044, new Uint8Array(1));
  assert.deepEqual(device.reads, [{ offset: 4, length: 1 }]);
  cfg.write16(0x04, 0x2); // I/O off, memory on
  assert.equal(pio.find(0xc040), undefined);
  assert.deepEqual(fn.moves, [], "I/O BARs are not reported as memory moves");
});

Deno.test("PciBus command register keeps only implemented bits", () => {
  const { bus, slot } = setup();
  bus.add(testFunction());
  slot(1).write16(0x04, 0xffff);
  assert.equal(slot(1).read16(0x04), 0x0547, "I/O, memory, master, parity, SERR, INTx disable");
  slot(1).write8(0x05, 0x00); // the high byte alone
  assert.equal(slot(1).read16(0x04), 0x0047);
});

Deno.test("PciBus refuses malformed BAR descriptions with PciConfigError", () => {
  const { bus } = setup();
  const device = new RecordingDevice();
  assert.throws(
    () => bus.add(testFunction({ bars: [{ index: 0, size: 0x3000, kind: "mem32", device }] })),
    /power of two/,
  );
  assert.throws(
    () => bus.add(testFunction({ bars: [{ index: 5, size: 0x1000, kind: "mem64", device }] })),
    /index 5/,
  );
  assert.throws(
    () =>
      bus.add(testFunction({
        bars: [{ index: 0, size: 0x1000, kind: "mem64", device }, {
          index: 1,
          size: 0x1000,
          kind: "mem32",
          device,
        }],
      })),
    /overlaps another BAR/,
  );
  assert.throws(
    () => bus.add(testFunction({ bars: [{ index: 0, size: 0x2000_0000, kind: "mem32", device }] })),
    /does not fit in the PCI MMIO window/,
  );
});

Deno.test("PciBus links capabilities from 0x40 on dword boundaries, found as Linux walks them", () => {
  const { bus, slot } = setup();
  bus.add(testFunction({
    capabilities: [vendorCap([16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), vendorCap([5, 2, 9])],
    bars: [{ index: 0, size: 0x4000, kind: "mem64", device: new RecordingDevice() }],
    msix: { vectors: 3, bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 },
  }));
  const cfg = slot(1);
  assert.equal(cfg.read16(0x06) & 0x10, 0x10, "capability list bit");
  assert.equal(cfg.read8(0x34), 0x40);
  const first = findCapability(cfg, 0x09);
  assert.equal(first, 0x40);
  const second = findCapability(cfg, 0x09, first);
  assert.equal(second, 0x50, "16 bytes after the first");
  assert.deepEqual([cfg.read8(0x52), cfg.read8(0x53), cfg.read8(0x54), cfg.read8(0x55)], [
    5,
    2,
    9,
    0,
  ]);
  assert.equal(findCapability(cfg, 0x09, second), undefined);
  assert.equal(findCapability(cfg, 0x11), 0x58, "MSI-X after the function's capabilities");
  assert.equal(cfg.read8(0x59), 0, "end of the list");
  assert.equal(findCapability(cfg, 0x05), undefined, "no MSI");
});

Deno.test("PciBus forwards writes into a capability body to onWrite and keeps read-only bodies", () => {
  const { bus, slot } = setup();
  const writes: { offset: number; bytes: number[] }[] = [];
  const writable = vendorCap(
    [20, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    (offset, data) => writes.push({ offset, bytes: [...data] }),
  );
  const readOnly = vendorCap([4, 1]);
  bus.add(testFunction({ capabilities: [writable, readOnly] }));
  const cfg = slot(1);
  cfg.write32(0x44, 0x1122_3344); // body bytes 2-5
  cfg.write8(0x41, 0x99); // the next pointer: read-only
  assert.deepEqual(writes, [{ offset: 2, bytes: [0x44, 0x33, 0x22, 0x11] }]);
  assert.equal(cfg.read32(0x44), 0x1122_3344);
  assert.deepEqual([...writable.body.subarray(2, 6)], [0x44, 0x33, 0x22, 0x11]);
  assert.equal(cfg.read8(0x41), 0x4c, "next pointer unchanged");
  cfg.write16(0x4e, 0xffff);
  assert.equal(cfg.read16(0x4e), 0x0104, "read-only body unchanged");
});

Deno.test("PciBus refuses capabilities that overflow config space", () => {
  const { bus } = setup();
  assert.throws(
    () =>
      bus.add(
        testFunction({
          capabilities: [vendorCap(new Array(150).fill(0)), vendorCap(new Array(60).fill(0))],
        }),
      ),
    /capabilities need 216 bytes but config space has 192/,
  );
});
