import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { PCI_MMIO_WINDOW_START } from "../../core/layout.ts";
import { PciConfigMechanism } from "./config_mechanism.ts";
import { PciBus } from "./pci_bus.ts";
import { PciConfigError } from "./pci_registers.ts";
import { conf1Slot, FakeMsiController, RecordingDevice, testFunction } from "./testing/fakes.ts";

const BAR = PCI_MMIO_WINDOW_START;
const TABLE = BAR + 0x2000;
const PBA = BAR + 0x3000;
const CAP = 0x40; // the only capability
const ENABLE = 0x8000;
const MASKALL = 0x4000;

function setup(vectors = 3) {
  const mmio = new Bus();
  const msi = new FakeMsiController();
  const logs: string[] = [];
  const irqs: [number, boolean][] = [];
  const bus = new PciBus({
    mmio,
    msi,
    setIrqLevel: (gsi, high) => irqs.push([gsi, high]),
    log: (m) => logs.push(m),
  });
  const device = new RecordingDevice();
  const fn = testFunction({
    bars: [{ index: 0, size: 0x4000, kind: "mem64", device }],
    msix: { vectors, bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 },
  });
  bus.add(fn);
  const cfg = conf1Slot(new PciConfigMechanism(bus), 1);
  const interrupts = fn.interrupts!;
  const u32 = (address: number, value: number) => {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value, true);
    mmio.write(address, data);
  };
  const readU32 = (address: number) => {
    const data = new Uint8Array(4);
    mmio.read(address, data);
    return new DataView(data.buffer).getUint32(0, true);
  };
  /** Writes entry `v` the way Linux's pci_write_msi_msg does: address, data, then control. */
  const program = (v: number, addressLo: number, data: number, masked = false) => {
    u32(TABLE + 16 * v, addressLo);
    u32(TABLE + 16 * v + 4, 0);
    u32(TABLE + 16 * v + 8, data);
    u32(TABLE + 16 * v + 12, masked ? 1 : 0);
  };
  return { mmio, msi, logs, irqs, device, fn, cfg, interrupts, u32, readU32, program };
}

Deno.test("MSI-X capability announces the table size and where the table and PBA live", () => {
  const { cfg } = setup(3);
  assert.equal(cfg.read8(CAP), 0x11);
  assert.equal(cfg.read16(CAP + 2), 2, "table size N-1, disabled, unmasked");
  assert.equal(cfg.read32(CAP + 4), 0x2000, "table offset, BIR 0");
  assert.equal(cfg.read32(CAP + 8), 0x3000, "PBA offset, BIR 0");
  cfg.write32(CAP + 4, 0x1234_5678);
  assert.equal(cfg.read32(CAP + 4), 0x2000, "read-only");
  cfg.write16(CAP + 2, 0xffff);
  assert.equal(cfg.read16(CAP + 2), 0xc002, "only enable and function mask are writable");
});

Deno.test("MSI-X entries start masked with a zero message", () => {
  const { readU32 } = setup(2);
  assert.deepEqual([0, 4, 8, 12, 16, 28].map((o) => readU32(TABLE + o)), [0, 0, 0, 1, 0, 1]);
});

Deno.test("MSI-X programs a vector's route once MSI-X is enabled and the entry unmasked", () => {
  const { msi, cfg, program, interrupts } = setup(2);
  assert.equal(msi.routes.length, 2, "one route per vector");
  program(1, 0xfee0_1000, 0x4041);
  assert.deepEqual(msi.routes[1].programmed, [], "nothing while MSI-X is off");
  assert.equal(interrupts.msix(1), false, "off: the function must use INTx");
  cfg.write16(CAP + 2, ENABLE);
  assert.equal(interrupts.msixEnabled, true);
  assert.deepEqual(msi.routes[1].message, { addressLo: 0xfee0_1000, addressHi: 0, data: 0x4041 });
  assert.equal(msi.routes[0].programmed.length, 0, "vector 0 is still masked");
  assert.equal(interrupts.msix(1), true);
  assert.equal(msi.routes[1].triggers, 1);
  program(1, 0xfee0_2000, 0x4042);
  assert.deepEqual(msi.routes[1].message, { addressLo: 0xfee0_2000, addressHi: 0, data: 0x4042 });
  cfg.write16(CAP + 2, 0);
  assert.equal(msi.routes[1].message, undefined, "disabling MSI-X disables the routes");
  assert.equal(interrupts.msix(1), false);
  assert.equal(msi.routes[1].triggers, 1);
});

Deno.test("MSI-X sets the pending bit of a masked vector and sends it on unmask", () => {
  const { msi, cfg, program, interrupts, u32, readU32 } = setup(3);
  cfg.write16(CAP + 2, ENABLE);
  program(2, 0xfee0_0000, 0x30, true);
  assert.equal(msi.routes[2].message, undefined, "a masked vector's route is off");
  assert.equal(interrupts.msix(2), false);
  assert.equal(readU32(PBA), 0b100, "pending bit 2");
  assert.equal(msi.routes[2].triggers, 0);
  u32(TABLE + 16 * 2 + 12, 0); // unmask
  assert.deepEqual(msi.routes[2].message, { addressLo: 0xfee0_0000, addressHi: 0, data: 0x30 });
  assert.equal(msi.routes[2].triggers, 1, "the pending message goes out on unmask");
  assert.equal(readU32(PBA), 0);
  u32(PBA, 0xff);
  assert.equal(readU32(PBA), 0, "the PBA is read-only");
});

Deno.test("MSI-X function mask holds every vector pending until it is cleared", () => {
  const { msi, cfg, program, interrupts, readU32 } = setup(2);
  program(0, 0xfee0_0000, 0x20);
  program(1, 0xfee0_0000, 0x21);
  cfg.write16(CAP + 2, ENABLE | MASKALL); // how Linux enables MSI-X before programming
  assert.equal(msi.routes[0].message, undefined);
  assert.equal(interrupts.msix(0), false);
  assert.equal(interrupts.msix(1), false);
  assert.equal(readU32(PBA), 0b11);
  cfg.write16(CAP + 2, ENABLE);
  assert.deepEqual(msi.routes.map((r) => r.triggers), [1, 1]);
  assert.deepEqual(msi.routes.map((r) => r.message?.data), [0x20, 0x21]);
  assert.equal(readU32(PBA), 0);
});

Deno.test("MSI-X reprograms a route only when its effective message changes", () => {
  const { msi, cfg, program, u32 } = setup(1);
  cfg.write16(CAP + 2, ENABLE);
  program(0, 0xfee0_0000, 0x20);
  u32(TABLE + 12, 0); // unmask again: no change
  u32(TABLE + 8, 0x20); // same data: no change
  assert.equal(msi.routes[0].programmed.length, 1);
});

Deno.test("MSI-X serves the table and PBA itself and forwards the rest of the BAR", () => {
  const { device, mmio, u32, readU32 } = setup(1);
  u32(BAR + 0x10, 5);
  assert.equal(readU32(BAR + 0x1000), 0xa3a2a1a0);
  readU32(TABLE);
  readU32(PBA);
  u32(TABLE + 16 * 5, 1); // past the one-entry table: the function's
  assert.deepEqual(device.writes, [{ offset: 0x10, bytes: [5, 0, 0, 0] }, {
    offset: 0x2050,
    bytes: [1, 0, 0, 0],
  }]);
  assert.deepEqual(device.reads, [{ offset: 0x1000, length: 4 }]);
  const qword = new Uint8Array(8);
  mmio.read(TABLE + 8, qword);
  assert.deepEqual([...qword], [0, 0, 0, 0, 1, 0, 0, 0], "a qword read of data and control");
});

Deno.test("MSI-X refuses an out-of-range vector without throwing", () => {
  const { cfg, interrupts, logs, program } = setup(2);
  program(0, 0xfee0_0000, 0x20);
  cfg.write16(CAP + 2, ENABLE);
  assert.equal(interrupts.msix(2), false);
  assert.equal(interrupts.msix(-1), false);
  assert.match(logs[0], /MSI-X vector 2 does not exist \(the function has 2\)/);
});

Deno.test("MSI-X layouts that do not fit their BAR are configuration errors", () => {
  const bus = new PciBus({ mmio: new Bus(), msi: new FakeMsiController(), setIrqLevel() {} });
  const device = new RecordingDevice();
  const bar = { index: 0, size: 0x1000, kind: "mem32" as const, device };
  const layout = (tableOffset: number, pbaOffset: number, vectors = 4, barIndex = 0) => ({
    bars: [bar],
    msix: { vectors, bar: barIndex, tableOffset, pbaOffset },
  });
  assert.throws(() => bus.add(testFunction(layout(0xff8, 0x800))), /MSI-X table at 0xff8/);
  assert.throws(() => bus.add(testFunction(layout(0x800, 0x804))), /PBA at 0x804.*8-byte aligned/);
  assert.throws(() => bus.add(testFunction(layout(0x800, 0x808))), /overlaps the PBA/);
  assert.throws(() => bus.add(testFunction(layout(0, 0x800, 0))), PciConfigError);
  assert.throws(
    () => bus.add(testFunction(layout(0, 0x800, 4, 2))),
    /BAR 2, which is not a memory BAR/,
  );
});

Deno.test("MSI-X gives its routes back when the function is refused", () => {
  const msi = new FakeMsiController();
  const bus = new PciBus({ mmio: new Bus(), msi, setIrqLevel() {} });
  const device = new RecordingDevice();
  assert.throws(() =>
    bus.add(testFunction({
      bars: [{ index: 0, size: 0x1000, kind: "mem32", device }],
      msix: { vectors: 2, bar: 0, tableOffset: 0, pbaOffset: 0x800 },
      capabilities: [{ id: 9, body: new Uint8Array(250) }],
    }))
  );
  assert.equal(msi.routes.length, 2);
  assert.ok(msi.routes.every((r) => r.released));
});

Deno.test("MSI-X enabled keeps INTx quiet", () => {
  const { cfg, interrupts, irqs } = setup(1);
  interrupts.setIntx(true);
  assert.deepEqual(irqs, [[21, true]]);
  cfg.write16(CAP + 2, ENABLE);
  assert.deepEqual(irqs.at(-1), [21, false]);
  cfg.write16(CAP + 2, 0);
  assert.deepEqual(irqs.at(-1), [21, true]);
});
