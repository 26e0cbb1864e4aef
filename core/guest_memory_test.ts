import assert from "node:assert/strict";
import { GuestMemory, GuestMemoryError } from "./guest_memory.ts";

const twoRegions = () =>
  new GuestMemory([
    { start: 0, bytes: new Uint8Array(0x1000) },
    { start: 0x10000, bytes: new Uint8Array(0x1000) },
  ]);

Deno.test("GuestMemory reads back what it wrote, little-endian, in every region", () => {
  const mem = twoRegions();
  mem.writeU32(0xffc, 0x12345678);
  mem.writeU64(0x10ff8, 0x1122334455667788n);
  mem.writeU16(0x10000, 0xbeef);
  assert.equal(mem.readU32(0xffc), 0x12345678);
  assert.equal(mem.readU8(0xffc), 0x78);
  assert.equal(mem.readU64(0x10ff8), 0x1122334455667788n);
  assert.deepEqual([...mem.read(0x10000, 2)], [0xef, 0xbe]);
  assert.equal(mem.size, 0x2000);
});

Deno.test("GuestMemory refuses accesses outside RAM, straddling regions, or malformed", () => {
  const mem = twoRegions();
  const outside = [
    () => mem.readU8(0x1000), // the gap
    () => mem.readU32(0xffe), // runs off the first region
    () => mem.slice(0xff0, 0x10000), // straddles the gap
    () => mem.readU64(0x10ffc), // runs off the end
    () => mem.read(-1, 1),
    () => mem.read(0.5, 1),
    () => mem.read(Number.NaN, 1),
    () => mem.read(0, -1),
    () => mem.write(0x10fff, new Uint8Array(2)),
    () => mem.read(2 ** 60, 1),
  ];
  for (const access of outside) assert.throws(access, GuestMemoryError);
  assert.equal(mem.contains(0xfff, 1), true);
  assert.equal(mem.contains(0xfff, 2), false);
});

Deno.test("GuestMemory.slice() is a live view into guest RAM", () => {
  const mem = GuestMemory.ofSize(4096);
  mem.slice(100, 4).set([1, 2, 3, 4]);
  assert.equal(mem.readU32(100), 0x04030201);
});

Deno.test("GuestMemory refuses overlapping regions", () => {
  assert.throws(() =>
    new GuestMemory([
      { start: 0, bytes: new Uint8Array(0x2000) },
      { start: 0x1000, bytes: new Uint8Array(0x1000) },
    ]), RangeError);
});
