import assert from "node:assert/strict";
import { compareImageContents, compareImages } from "./compare.ts";
import { MemoryImage } from "./memory_image.ts";

function raw(path: string, size: number, writes: [number, number][] = []): void {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  file.truncateSync(size);
  for (const [offset, value] of writes) {
    file.seekSync(offset, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array([value]));
  }
  file.close();
}

function withDir(body: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync();
  try {
    body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("compareImages() finds identical images equal", () =>
  withDir((dir) => {
    raw(`${dir}/a`, 3 << 20, [[5, 1], [2 << 20, 9]]);
    raw(`${dir}/b`, 3 << 20, [[5, 1], [2 << 20, 9]]);
    assert.deepEqual(compareImages(`${dir}/a`, `${dir}/b`), { equal: true, sizeMismatch: false });
  }));

Deno.test("compareImages() reports the first differing 512-byte sector, as qemu-img does", () =>
  withDir((dir) => {
    raw(`${dir}/a`, 3 << 20, [[1000, 1], [2 << 20, 9]]);
    raw(`${dir}/b`, 3 << 20, [[2 << 20, 9]]);
    const result = compareImages(`${dir}/a`, `${dir}/b`);
    assert.equal(result.equal, false);
    assert.equal(result.firstDifference, 512);
    assert.equal(result.difference, "content");
  }));

Deno.test("compareImages() treats the larger image's zero tail as equal unless strict", () =>
  withDir((dir) => {
    raw(`${dir}/a`, 1 << 20, [[7, 7]]);
    raw(`${dir}/b`, 2 << 20, [[7, 7]]);
    assert.deepEqual(compareImages(`${dir}/a`, `${dir}/b`), { equal: true, sizeMismatch: true });
    assert.deepEqual(compareImages(`${dir}/a`, `${dir}/b`, { strict: true }), {
      equal: false,
      difference: "size",
      sizeMismatch: true,
    });
    raw(`${dir}/b`, 2 << 20, [[7, 7], [1500000, 1]]);
    const result = compareImages(`${dir}/b`, `${dir}/a`);
    assert.equal(result.equal, false);
    assert.equal(result.firstDifference, 1499648); // what qemu-img compare prints
  }));

Deno.test("compareImageContents() in strict mode tells allocated zeroes from holes", () => {
  const a = new MemoryImage("a", 4 * 65536);
  const b = new MemoryImage("b", 4 * 65536);
  a.writeZeroes(2 * 65536, 65536);
  assert.equal(compareImageContents(a, b).equal, true);
  const strict = compareImageContents(a, b, { strict: true });
  assert.equal(strict.equal, false);
  assert.equal(strict.difference, "allocation");
  assert.equal(strict.firstDifference, 2 * 65536);
});

Deno.test("compareImageContents() reads through backing chains", () => {
  const base = new MemoryImage("base", 4 * 65536);
  base.write(65536, [new Uint8Array(65536).fill(4)]);
  const top = new MemoryImage("top", 4 * 65536, { backing: base });
  const flat = new MemoryImage("flat", 4 * 65536);
  flat.write(65536, [new Uint8Array(65536).fill(4)]);
  assert.equal(compareImageContents(top, flat).equal, true);
  top.write(65536 + 4096, [new Uint8Array([5])]);
  assert.equal(compareImageContents(top, flat).firstDifference, 65536 + 4096);
});

Deno.test("compareImages() fails on a missing file", () =>
  withDir((dir) => {
    raw(`${dir}/a`, 4096);
    assert.throws(() => compareImages(`${dir}/a`, `${dir}/missing`), /missing: no such file/);
  }));
