import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { IOAPIC_ADDRESS, LAPIC_ADDRESS, MPTABLE_END, MPTABLE_START } from "../layout.ts";
import { MPTABLE_MAX_CPUS, mpTableSize, writeMpTable } from "./mptable.ts";
import { BootImageError } from "./boot_error.ts";

const MiB = 1024 * 1024;

function sum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}
function text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

interface ParsedEntry {
  type: number;
  bytes: Uint8Array;
}

/** Parses the tables back as a guest would: from the floating pointer to each entry. */
function parseMpTable(mem: GuestMemory, at: number) {
  const fp = mem.read(at, 16);
  assert.equal(text(fp.subarray(0, 4)), "_MP_");
  assert.equal(sum(fp), 0, "floating pointer checksum");
  const configAt = mem.readU32(at + 4);
  const length = mem.readU16(configAt + 4);
  const config = mem.read(configAt, length);
  assert.equal(text(config.subarray(0, 4)), "PCMP");
  assert.equal(sum(config), 0, "configuration table checksum");
  const count = mem.readU16(configAt + 34);
  const entries: ParsedEntry[] = [];
  let p = 44;
  for (let i = 0; i < count; i++) {
    const type = config[p];
    const size = type === 0 ? 20 : 8;
    entries.push({ type, bytes: config.subarray(p, p + size) });
    p += size;
  }
  assert.equal(p, length, "entries fill the base table exactly");
  return { fp, configAt, config, entries };
}

Deno.test("writeMpTable() writes a floating pointer that points at a valid configuration table", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  assert.equal(writeMpTable(mem, 2), MPTABLE_START);
  const { fp, configAt, config } = parseMpTable(mem, MPTABLE_START);
  assert.equal(configAt, MPTABLE_START + 16);
  assert.equal(fp[8], 1, "length in paragraphs");
  assert.equal(fp[9], 4, "spec revision 1.4");
  assert.deepEqual([...fp.subarray(11, 16)], [0, 0, 0, 0, 0], "feature bytes");
  assert.equal(config[6], 4, "spec revision");
  assert.equal(text(config.subarray(8, 16)), "DENOVISR");
  assert.equal(text(config.subarray(16, 28)), "DENOVISOR   ");
  const view = new DataView(config.buffer);
  assert.equal(view.getUint32(28, true), 0, "OEM table pointer");
  assert.equal(view.getUint32(36, true), LAPIC_ADDRESS);
  assert.equal(view.getUint16(40, true), 0, "extended table length");
  assert.equal(config.length, mpTableSize(2) - 16);
});

Deno.test("writeMpTable() lists every CPU with the BSP flag only on APIC id 0", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 4);
  const cpus = parseMpTable(mem, MPTABLE_START).entries.filter((e) => e.type === 0);
  assert.equal(cpus.length, 4);
  cpus.forEach((e, i) => {
    const v = new DataView(e.bytes.buffer, e.bytes.byteOffset);
    assert.equal(e.bytes[1], i, "local APIC id");
    assert.equal(e.bytes[2], 0x14, "local APIC version");
    assert.equal(e.bytes[3], i === 0 ? 0x03 : 0x01, "EN and BP flags");
    assert.equal(v.getUint32(4, true), 0x600, "CPU signature");
    assert.equal(v.getUint32(8, true), 0x201, "feature flags");
  });
});

Deno.test("writeMpTable() describes one ISA bus and the IOAPIC with id = number of CPUs", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 3);
  const { entries } = parseMpTable(mem, MPTABLE_START);
  const buses = entries.filter((e) => e.type === 1);
  assert.equal(buses.length, 1);
  assert.equal(buses[0].bytes[1], 0);
  assert.equal(text(buses[0].bytes.subarray(2, 8)), "ISA   ");
  const ioapics = entries.filter((e) => e.type === 2);
  assert.equal(ioapics.length, 1);
  const io = ioapics[0].bytes;
  assert.deepEqual([io[1], io[2], io[3]], [3, 0x11, 1]);
  assert.equal(new DataView(io.buffer, io.byteOffset).getUint32(4, true), IOAPIC_ADDRESS);
});

Deno.test("writeMpTable() routes ISA IRQ 0 to pin 2 and the others to their own pins", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 1);
  const ints = parseMpTable(mem, MPTABLE_START).entries.filter((e) => e.type === 3);
  const routes = ints.map((e) => {
    assert.equal(e.bytes[1], 0, "INT");
    assert.equal(e.bytes[2] | (e.bytes[3] << 8), 0, "conforming polarity and trigger");
    assert.equal(e.bytes[4], 0, "ISA bus");
    assert.equal(e.bytes[6], 1, "IOAPIC id");
    return [e.bytes[5], e.bytes[7]];
  });
  const expected = [[0, 2], ...[1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((i) => [i, i])];
  assert.deepEqual(routes, expected);
});

Deno.test("writeMpTable() with irq0Pin 0 maps all 16 ISA IRQs to their own pins", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 1, { irq0Pin: 0 });
  const ints = parseMpTable(mem, MPTABLE_START).entries.filter((e) => e.type === 3);
  assert.deepEqual(
    ints.map((e) => [e.bytes[5], e.bytes[7]]),
    [...Array(16).keys()].map((i) => [i, i]),
  );
});

Deno.test("writeMpTable() wires ExtINT to LINT0 and NMI to LINT1 of all local APICs", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 2);
  const lints = parseMpTable(mem, MPTABLE_START).entries.filter((e) => e.type === 4);
  assert.deepEqual(lints.map((e) => [...e.bytes]), [
    [4, 3, 0, 0, 0, 0, 0xff, 0],
    [4, 1, 0, 0, 0, 0, 0xff, 1],
  ]);
});

Deno.test("writeMpTable() lists up to 254 CPUs (8-bit APIC IDs) within the BIOS area", () => {
  assert.equal(MPTABLE_MAX_CPUS, 254);
  assert.ok(MPTABLE_START + mpTableSize(MPTABLE_MAX_CPUS) <= MPTABLE_END);
  const mem = GuestMemory.ofSize(16 * MiB);
  const { entries } = (writeMpTable(mem, MPTABLE_MAX_CPUS), parseMpTable(mem, MPTABLE_START));
  assert.equal(entries.filter((e) => e.type === 0).length, 254);
  const ioapic = entries.find((e) => e.type === 2);
  assert.ok(ioapic !== undefined);
  assert.throws(() => writeMpTable(mem, 255), BootImageError);
  assert.throws(
    () => writeMpTable(mem, 255),
    /255 vCPUs cannot be listed in the MP table; use 1 to 254 vCPUs/,
  );
  assert.throws(() => writeMpTable(mem, 0), BootImageError);
});

Deno.test("writeMpTable() without PCI interrupts lists no PCI bus", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 1);
  const buses = parseMpTable(mem, MPTABLE_START).entries.filter((e) => e.type === 1);
  assert.deepEqual(buses.map((e) => text(e.bytes.subarray(2, 8))), ["ISA   "]);
});

Deno.test("writeMpTable() with PCI interrupts lists PCI as bus 0 and moves ISA to bus 1", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, 2, { pciIntx: [] });
  const { entries, config } = parseMpTable(mem, MPTABLE_START);
  const buses = entries.filter((e) => e.type === 1);
  assert.deepEqual(buses.map((e) => [e.bytes[1], text(e.bytes.subarray(2, 8))]), [[0, "PCI   "], [
    1,
    "ISA   ",
  ]]);
  const isa = entries.filter((e) => e.type === 3);
  assert.equal(isa.length, 15);
  assert.ok(isa.every((e) => e.bytes[4] === 1), "ISA interrupts name ISA bus 1");
  assert.equal(config.length, mpTableSize(2, { pciIntx: [] }) - 16);
});

Deno.test("writeMpTable() routes each PCI slot pin level-triggered, active low, to its swizzled IOAPIC pin", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  const pciIntx = [{ slot: 1, pin: 1 }, { slot: 2, pin: 1 }, { slot: 5, pin: 2 }, {
    slot: 31,
    pin: 4,
  }];
  writeMpTable(mem, 2, { pciIntx });
  const pci = parseMpTable(mem, MPTABLE_START).entries.filter((e) =>
    e.type === 3 && e.bytes[4] === 0
  );
  assert.deepEqual(
    pci.map((e) => ({
      type: e.bytes[1],
      flags: e.bytes[2] | (e.bytes[3] << 8),
      slot: e.bytes[5] >> 2,
      pin: (e.bytes[5] & 3) + 1,
      ioapic: e.bytes[6],
      ioapicPin: e.bytes[7],
    })),
    [
      { type: 0, flags: 0x0f, slot: 1, pin: 1, ioapic: 2, ioapicPin: 21 },
      { type: 0, flags: 0x0f, slot: 2, pin: 1, ioapic: 2, ioapicPin: 22 },
      { type: 0, flags: 0x0f, slot: 5, pin: 2, ioapic: 2, ioapicPin: 22 },
      { type: 0, flags: 0x0f, slot: 31, pin: 4, ioapic: 2, ioapicPin: 22 },
    ],
  );
});

Deno.test("writeMpTable() fits every PCI pin alongside the most CPUs", () => {
  const all = [...Array(32).keys()].flatMap((slot) => [1, 2, 3, 4].map((pin) => ({ slot, pin })));
  const options = { pciIntx: all };
  assert.ok(MPTABLE_START + mpTableSize(MPTABLE_MAX_CPUS, options) <= MPTABLE_END);
  const mem = GuestMemory.ofSize(16 * MiB);
  writeMpTable(mem, MPTABLE_MAX_CPUS, options);
  const { entries } = parseMpTable(mem, MPTABLE_START);
  assert.equal(entries.filter((e) => e.type === 3 && e.bytes[4] === 0).length, 128);
});

Deno.test("writeMpTable() refuses PCI pins that do not exist or repeat", () => {
  const mem = GuestMemory.ofSize(16 * MiB);
  for (
    const bad of [[{ slot: 32, pin: 1 }], [{ slot: 1, pin: 0 }], [{ slot: 1, pin: 5 }], [{
      slot: 3,
      pin: 1,
    }, { slot: 3, pin: 1 }]]
  ) {
    assert.throws(() => writeMpTable(mem, 1, { pciIntx: bad }), BootImageError);
  }
  assert.throws(
    () => writeMpTable(mem, 1, { pciIntx: [{ slot: 1, pin: 9 }] }),
    /PCI slot 1 pin 9 cannot be listed in the MP table; list each slot 0-31 and pin 1-4/,
  );
});
