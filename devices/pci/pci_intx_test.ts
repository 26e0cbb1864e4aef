import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { PciConfigMechanism } from "./config_mechanism.ts";
import { PciBus, pciIntxGsi } from "./pci_bus.ts";
import { conf1Slot, FakeMsiController, testFunction } from "./testing/fakes.ts";

function setup() {
  const irqs: [number, boolean][] = [];
  const bus = new PciBus({
    mmio: new Bus(),
    msi: new FakeMsiController(),
    setIrqLevel: (gsi, high) => irqs.push([gsi, high]),
  });
  const ports = new PciConfigMechanism(bus);
  return { bus, irqs, slot: (n: number) => conf1Slot(ports, n) };
}

Deno.test("pciIntxGsi() rotates the four pins over GSIs 20-23 by slot", () => {
  assert.equal(pciIntxGsi(0, 1), 20);
  assert.equal(pciIntxGsi(1, 1), 21);
  assert.equal(pciIntxGsi(3, 1), 23);
  assert.equal(pciIntxGsi(4, 1), 20);
  assert.equal(pciIntxGsi(1, 4), 20);
  assert.equal(pciIntxGsi(31, 2), 20);
});

Deno.test("PciBus drives a function's INTx GSI and reports it in the status and line registers", () => {
  const { bus, irqs, slot } = setup();
  const fn = testFunction();
  bus.add(fn);
  assert.equal(slot(1).read8(0x3c), 21);
  fn.interrupts!.setIntx(true);
  fn.interrupts!.setIntx(true); // no change: no second call
  assert.equal(slot(1).read16(0x06) & 0x08, 0x08, "interrupt status");
  fn.interrupts!.setIntx(false);
  assert.equal(slot(1).read16(0x06) & 0x08, 0);
  assert.deepEqual(irqs, [[21, true], [21, false]]);
});

Deno.test("PciBus ORs the levels of functions that share a GSI", () => {
  const { bus, irqs } = setup();
  const a = testFunction(); // slot 1, INTA# -> 21
  const filler = [testFunction(), testFunction(), testFunction()]; // slots 2-4
  const b = testFunction(); // slot 5, INTA# -> 21
  for (const fn of [a, ...filler, b]) bus.add(fn);
  a.interrupts!.setIntx(true);
  b.interrupts!.setIntx(true);
  a.interrupts!.setIntx(false);
  assert.deepEqual(irqs, [[21, true]], "still held by slot 5");
  b.interrupts!.setIntx(false);
  assert.deepEqual(irqs, [[21, true], [21, false]]);
  filler[0].interrupts!.setIntx(true);
  assert.deepEqual(irqs.at(-1), [22, true], "slot 2 is on another line");
});

Deno.test("PciBus honours INTx Disable but keeps the interrupt status bit", () => {
  const { bus, irqs, slot } = setup();
  const fn = testFunction();
  bus.add(fn);
  fn.interrupts!.setIntx(true);
  slot(1).write16(0x04, 0x0402); // memory on, INTx disabled
  assert.deepEqual(irqs, [[21, true], [21, false]]);
  assert.equal(slot(1).read16(0x06) & 0x08, 0x08, "status shows the pending interrupt");
  fn.interrupts!.setIntx(false);
  fn.interrupts!.setIntx(true);
  assert.equal(irqs.length, 2, "disabled: the line stays low");
  slot(1).write16(0x04, 0x0002);
  assert.deepEqual(irqs.at(-1), [21, true], "re-enabled while raised");
});

Deno.test("PciBus lists the used interrupt pins for the MP table, not the host bridge", () => {
  const { bus } = setup();
  bus.add(testFunction({ interruptPin: 1 }));
  bus.add(testFunction({ interruptPin: 0 }));
  bus.add(testFunction({ interruptPin: 3 }));
  assert.deepEqual(bus.intxSources(), [{ slot: 1, pin: 1 }, { slot: 3, pin: 3 }]);
});

Deno.test("PciBus gives a function without a pin line 0xff and never raises a GSI for it", () => {
  const { bus, irqs, slot } = setup();
  const fn = testFunction({ interruptPin: 0 });
  bus.add(fn);
  assert.equal(slot(1).read16(0x3c), 0x00ff);
  fn.interrupts!.setIntx(true);
  assert.deepEqual(irqs, []);
  assert.equal(slot(1).read16(0x06) & 0x08, 0);
});

Deno.test("PciBus keeps what the OS writes to the interrupt line register", () => {
  const { bus, slot } = setup();
  bus.add(testFunction());
  slot(1).write8(0x3c, 11);
  assert.equal(slot(1).read8(0x3c), 11);
  slot(1).write8(0x3d, 4);
  assert.equal(slot(1).read8(0x3d), 1, "the pin is read-only");
});
