import assert from "node:assert/strict";
import { mapOpenImage } from "./map.ts";
import { MemoryImage } from "./memory_image.ts";

const C = 65536;

Deno.test("mapOpenImage() names the layer providing each run, merged like qemu-img map", () => {
  const base = new MemoryImage("base", 8 * C);
  base.write(0, [new Uint8Array(2 * C).fill(1)]);
  base.writeZeroes(4 * C, C);
  const top = new MemoryImage("top", 8 * C, { backing: base });
  top.write(C, [new Uint8Array(10).fill(2)]);
  const map = mapOpenImage(top).map(({ start, length, depth, present, zero, data, file }) => ({
    start: start / C,
    length: length / C,
    depth,
    present,
    zero,
    data,
    file,
  }));
  assert.deepEqual(map, [
    { start: 0, length: 1, depth: 1, present: true, zero: false, data: true, file: "base" },
    { start: 1, length: 1, depth: 0, present: true, zero: false, data: true, file: "top" },
    { start: 2, length: 2, depth: 1, present: false, zero: true, data: false, file: "base" },
    { start: 4, length: 1, depth: 1, present: true, zero: true, data: false, file: "base" },
    { start: 5, length: 3, depth: 1, present: false, zero: true, data: false, file: "base" },
  ]);
});
