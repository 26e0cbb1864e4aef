import assert from "node:assert/strict";
import { convertImage, copyImageData } from "./convert.ts";
import { MemoryImage } from "./memory_image.ts";

const MiB = 1 << 20;

function rawWithData(path: string, size: number, writes: [number, number][]): Uint8Array {
  const expected = new Uint8Array(size);
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  file.truncateSync(size);
  for (const [offset, value] of writes) {
    const block = new Uint8Array(4096).fill(value);
    file.seekSync(offset, Deno.SeekMode.Start);
    file.writeSync(block);
    expected.set(block, offset);
  }
  file.close();
  return expected;
}

Deno.test("convertImage() copies a raw image byte for byte and keeps it sparse", () => {
  const dir = Deno.makeTempDirSync();
  try {
    // Written zeroes in the source (not holes) must not be copied as data either.
    const expected = rawWithData(`${dir}/src.raw`, 24 * MiB, [[0, 1], [MiB, 0], [
      20 * MiB + 4096,
      7,
    ]]);
    const result = convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, { format: "raw" });
    assert.equal(result.virtualSize, 24 * MiB);
    assert.equal(result.bytesWritten, 2 * 4096);
    assert.deepEqual(Deno.readFileSync(`${dir}/dst.raw`), expected);
    const blocks = Deno.statSync(`${dir}/dst.raw`).blocks!;
    assert.ok(blocks * 512 <= 64 * 1024, `${blocks * 512} bytes allocated`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("convertImage() refuses an existing output unless asked to overwrite", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const expected = rawWithData(`${dir}/src.raw`, MiB, [[8192, 3]]);
    Deno.writeTextFileSync(`${dir}/dst.raw`, "old contents");
    assert.throws(
      () => convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, { format: "raw" }),
      /the file exists/,
    );
    assert.equal(Deno.readTextFileSync(`${dir}/dst.raw`), "old contents");
    Deno.chmodSync(`${dir}/dst.raw`, 0o640);
    convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, { format: "raw", overwrite: true });
    assert.deepEqual(Deno.readFileSync(`${dir}/dst.raw`), expected);
    assert.equal(Deno.statSync(`${dir}/dst.raw`).mode! & 0o777, 0o640); // mode kept
    Deno.symlinkSync(`${dir}/dst.raw`, `${dir}/link.raw`);
    convertImage(`${dir}/src.raw`, `${dir}/link.raw`, { format: "raw", overwrite: true });
    assert.ok(Deno.lstatSync(`${dir}/link.raw`).isSymlink); // the link's target was replaced
    assert.throws(
      () => convertImage(`${dir}/src.raw`, `${dir}/src.raw`, { format: "raw", overwrite: true }),
      /into itself/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "dst.raw",
      "link.raw",
      "src.raw",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("convertImage() leaves no output behind when the source cannot be opened", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.throws(() => convertImage(`${dir}/missing`, `${dir}/dst`, { format: "raw" }));
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("convertImage() reports progress up to the virtual size", () => {
  const dir = Deno.makeTempDirSync();
  try {
    rawWithData(`${dir}/src.raw`, 5 * MiB + 512, [0, 1, 2, 3, 4].map((m) => [m * MiB, 1]));
    const seen: number[] = [];
    convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, {
      format: "raw",
      onProgress: (done, total) => {
        assert.equal(total, 5 * MiB + 512);
        seen.push(done);
      },
    });
    assert.equal(seen[0], 0);
    assert.equal(seen.at(-1), 5 * MiB + 512);
    assert.ok(seen.length >= 5);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("copyImageData() with topOnly copies only what the overlay stores itself", () => {
  const base = new MemoryImage("base", 4 * 65536);
  base.write(0, [new Uint8Array(3 * 65536).fill(1)]);
  const top = new MemoryImage("top", 4 * 65536, { backing: base });
  top.write(65536, [new Uint8Array(65536).fill(2)]);
  top.writeZeroes(2 * 65536, 65536);
  const targetBase = new MemoryImage("tbase", 4 * 65536);
  targetBase.write(0, [new Uint8Array(3 * 65536).fill(1)]);
  const target = new MemoryImage("target", 4 * 65536, { backing: targetBase });
  const result = copyImageData(top, target, { topOnly: true });
  assert.equal(result.bytesWritten, 65536);
  assert.deepEqual(target.states, ["unallocated", "data", "zero", "unallocated"]);
  const a = new Uint8Array(top.size);
  const b = new Uint8Array(top.size);
  top.read(0, [a]);
  target.read(0, [b]);
  assert.deepEqual(b, a);
});

Deno.test("copyImageData() flattens a chain: backing data is copied, zeroes are not", () => {
  const base = new MemoryImage("base", 4 * 65536);
  base.write(0, [new Uint8Array(65536).fill(1)]);
  const top = new MemoryImage("top", 4 * 65536, { backing: base });
  top.write(3 * 65536, [new Uint8Array(65536).fill(2)]);
  const target = new MemoryImage("flat", 4 * 65536);
  copyImageData(top, target);
  assert.deepEqual(target.states, ["data", "unallocated", "unallocated", "data"]);
  assert.throws(() => copyImageData(top, new MemoryImage("small", 65536)), /has only 65536 bytes/);
});

Deno.test("convertImage() with sparseSize 0 allocates every byte of the output", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const expected = rawWithData(`${dir}/src.raw`, 2 * MiB, [[MiB, 4]]);
    const result = convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, {
      format: "raw",
      sparseSize: 0,
    });
    assert.equal(result.bytesWritten, 2 * MiB);
    assert.deepEqual(Deno.readFileSync(`${dir}/dst.raw`), expected);
    assert.ok(Deno.statSync(`${dir}/dst.raw`).blocks! * 512 >= 2 * MiB);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("convertImage() into an existing image (-n) overwrites it, zeroes included", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const expected = rawWithData(`${dir}/src.raw`, 3 * MiB, [[0, 1], [2 * MiB, 2]]);
    // An old image full of 0xff, larger than the source: the first 3 MiB become the source.
    const old = new Uint8Array(4 * MiB).fill(0xff);
    Deno.writeFileSync(`${dir}/dst.raw`, old);
    convertImage(`${dir}/src.raw`, `${dir}/dst.raw`, { format: "raw", existingTarget: true });
    const after = Deno.readFileSync(`${dir}/dst.raw`);
    assert.equal(after.length, 4 * MiB);
    assert.deepEqual(after.subarray(0, 3 * MiB), expected);
    assert.deepEqual(after.subarray(3 * MiB), old.subarray(3 * MiB));
    Deno.writeFileSync(`${dir}/small.raw`, new Uint8Array(MiB));
    assert.throws(
      () =>
        convertImage(`${dir}/src.raw`, `${dir}/small.raw`, { format: "raw", existingTarget: true }),
      /has only 1048576 bytes/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
