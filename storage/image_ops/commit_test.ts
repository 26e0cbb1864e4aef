import assert from "node:assert/strict";
import { commitImageData } from "./commit.ts";
import { MemoryImage } from "./memory_image.ts";

const C = 65536;

function contents(image: MemoryImage): Uint8Array {
  const bytes = new Uint8Array(image.size);
  image.read(0, [bytes]);
  return bytes;
}

Deno.test("commitImageData() writes the overlay's data and zeroes into its base", () => {
  const base = new MemoryImage("base", 4 * C);
  base.write(0, [new Uint8Array(4 * C).fill(1)]);
  const top = new MemoryImage("top", 4 * C, { backing: base });
  top.write(C + 100, [new Uint8Array(10).fill(2)]);
  top.writeZeroes(3 * C, C);
  const before = contents(top);
  const result = commitImageData(top, base);
  assert.equal(result.bytesWritten, C);
  assert.deepEqual(contents(base), before);
  assert.ok(base.flushes >= 1);
});

Deno.test("commitImageData() grows a smaller base to the overlay's size", () => {
  const base = new MemoryImage("base", 2 * C);
  base.write(0, [new Uint8Array(2 * C).fill(1)]);
  const top = new MemoryImage("top", 4 * C, { backing: base });
  top.write(3 * C, [new Uint8Array(C).fill(3)]);
  const before = contents(top);
  commitImageData(top, base);
  assert.equal(base.size, 4 * C);
  assert.deepEqual(contents(base), before);
});

Deno.test("commitImageData() refuses a read-only base", () => {
  const base = new MemoryImage("base", C, { readOnly: true });
  const top = new MemoryImage("top", C, { backing: base });
  assert.throws(() => commitImageData(top, base), /base is read-only|it is read-only/);
});
