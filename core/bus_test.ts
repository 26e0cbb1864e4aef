import assert from "node:assert/strict";
import { Bus, BusOverlapError } from "./bus.ts";
import type { BusDevice } from "./bus_device.ts";

function recorder(log: string[], name: string): BusDevice {
  return {
    read: (offset, data) => data.fill(offset),
    write: (offset, data) => void log.push(`${name}@${offset}=${data[0]}`),
  };
}

Deno.test("Bus.insert() rejects ranges that overlap an existing one on either side", () => {
  const bus = new Bus();
  bus.insert(0x100, 0x10, "a", recorder([], "a"));
  assert.throws(() => bus.insert(0x10f, 1, "b", recorder([], "b")), BusOverlapError);
  assert.throws(() => bus.insert(0xf8, 0x9, "c", recorder([], "c")), BusOverlapError);
  assert.throws(() => bus.insert(0x0, 0x1000, "d", recorder([], "d")), BusOverlapError);
  bus.insert(0xf0, 0x10, "e", recorder([], "e"));
  bus.insert(0x110, 1, "f", recorder([], "f"));
  assert.deepEqual(bus.ranges.map((r) => r.name), ["e", "a", "f"]);
});

Deno.test("Bus.insert() rejects empty and negative ranges", () => {
  const bus = new Bus();
  assert.throws(() => bus.insert(0x10, 0, "zero", recorder([], "z")), RangeError);
  assert.throws(() => bus.insert(-1, 4, "neg", recorder([], "n")), RangeError);
});

Deno.test("Bus routes accesses to the owning device with offsets and misses gaps", () => {
  const log: string[] = [];
  const bus = new Bus();
  bus.insert(0x3f8, 8, "com1", recorder(log, "com1"));
  bus.insert(0x60, 5, "i8042", recorder(log, "i8042"));
  assert.ok(bus.write(0x3fd, new Uint8Array([7])));
  assert.ok(bus.write(0x64, new Uint8Array([0xfe])));
  assert.ok(!bus.write(0x3f7, new Uint8Array([1])));
  assert.ok(!bus.write(0x400, new Uint8Array([1])));
  const data = new Uint8Array(1);
  assert.ok(bus.read(0x3ff, data));
  assert.deepEqual(data[0], 7);
  assert.deepEqual(log, ["com1@5=7", "i8042@4=254"]);
});

Deno.test("Bus.remove() frees a range for reuse", () => {
  const bus = new Bus();
  bus.insert(0x10, 4, "a", recorder([], "a"));
  assert.ok(bus.remove(0x10));
  assert.ok(!bus.remove(0x10));
  bus.insert(0x12, 4, "b", recorder([], "b"));
  assert.deepEqual(bus.find(0x13)?.name, "b");
});
