import assert from "node:assert/strict";
import { DiskError } from "./disk.ts";
import { RawDisk } from "./raw_disk.ts";

function tempImage(size: number, fill?: (i: number) => number): string {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  const bytes = new Uint8Array(size);
  if (fill) { for (let i = 0; i < size; i++) bytes[i] = fill(i); }
  Deno.writeFileSync(path, bytes);
  return path;
}

function fileBytes(path: string): Uint8Array {
  return Deno.readFileSync(path);
}

Deno.test("RawDisk.open() reports a missing image precisely", () => {
  assert.throws(
    () => RawDisk.open("/nonexistent/x.img"),
    (error: unknown) =>
      error instanceof DiskError &&
      error.message === "Cannot open disk /nonexistent/x.img: no such file",
  );
});

Deno.test("RawDisk.open() refuses a directory", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.throws(() => RawDisk.open(dir, { readOnly: true }), /not a regular file|directory/);
  } finally {
    Deno.removeSync(dir);
  }
});

Deno.test("RawDisk takes its size from the file and reads into several buffers", () => {
  const path = tempImage(8192, (i) => i & 0xff);
  using disk = RawDisk.open(path);
  assert.equal(disk.size, 8192);
  const a = new Uint8Array(100);
  const b = new Uint8Array(412);
  disk.read(1000, [a, b]);
  assert.equal(a[0], 1000 & 0xff);
  assert.equal(b[0], 1100 & 0xff);
  assert.equal(b[411], 1511 & 0xff);
  Deno.removeSync(path);
});

Deno.test("RawDisk reads from views with an offset into a larger buffer", () => {
  const path = tempImage(4096, (i) => (i * 7) & 0xff);
  using disk = RawDisk.open(path);
  const memory = new Uint8Array(4096);
  const view = memory.subarray(1000, 1512);
  disk.read(512, [view]);
  assert.equal(memory[999], 0, "bytes before the view are untouched");
  assert.equal(memory[1000], (512 * 7) & 0xff);
  assert.equal(memory[1512], 0, "bytes after the view are untouched");
  Deno.removeSync(path);
});

Deno.test("RawDisk writes buffers in order and refuses ranges past the end", () => {
  const path = tempImage(4096);
  using disk = RawDisk.open(path);
  disk.write(510, [Uint8Array.of(1, 2), Uint8Array.of(3)]);
  assert.deepEqual([...fileBytes(path).subarray(510, 513)], [1, 2, 3]);
  assert.throws(() => disk.write(4095, [new Uint8Array(2)]), /disk has 4096 bytes/);
  assert.throws(() => disk.read(4096, [new Uint8Array(1)]), DiskError);
  assert.throws(() => disk.read(-1, [new Uint8Array(1)]), DiskError);
  Deno.removeSync(path);
});

Deno.test("RawDisk zero-fills a read that meets the end of a file shrunk behind its back", () => {
  const path = tempImage(4096, () => 0xaa);
  using disk = RawDisk.open(path);
  Deno.truncateSync(path, 1024);
  const buffer = new Uint8Array(2048).fill(0x55);
  disk.read(0, [buffer]);
  assert.equal(buffer[1023], 0xaa);
  assert.equal(buffer[1024], 0);
  assert.equal(buffer[2047], 0);
  Deno.removeSync(path);
});

Deno.test("a read-only RawDisk refuses writes, discards and write-zeroes", () => {
  const path = tempImage(4096, () => 9);
  using disk = RawDisk.open(path, { readOnly: true });
  assert.equal(disk.readOnly, true);
  assert.throws(() => disk.write(0, [new Uint8Array(1)]), /read-only/);
  assert.throws(() => disk.discard(0, 512), /read-only/);
  assert.throws(() => disk.writeZeroes(0, 512), /read-only/);
  disk.flush();
  assert.equal(fileBytes(path)[0], 9);
  Deno.removeSync(path);
});

Deno.test("discard and write-zeroes read back as zeroes and keep the size", () => {
  const path = tempImage(65536, () => 0xff);
  using disk = RawDisk.open(path);
  disk.discard(4096, 8192);
  disk.writeZeroes(20000, 100);
  disk.writeZeroes(32768, 4096, { unmap: true });
  const bytes = fileBytes(path);
  assert.equal(bytes.length, 65536);
  assert.equal(bytes[4095], 0xff);
  assert.ok(bytes.subarray(4096, 12288).every((b) => b === 0));
  assert.equal(bytes[12288], 0xff);
  assert.equal(bytes[19999], 0xff);
  assert.ok(bytes.subarray(20000, 20100).every((b) => b === 0));
  assert.equal(bytes[20100], 0xff);
  assert.ok(bytes.subarray(32768, 36864).every((b) => b === 0));
  Deno.removeSync(path);
});

Deno.test("flush succeeds and written data is in the file", () => {
  const path = tempImage(4096);
  using disk = RawDisk.open(path);
  disk.write(0, [Uint8Array.of(42)]);
  disk.flush();
  assert.equal(fileBytes(path)[0], 42);
  Deno.removeSync(path);
});

Deno.test("a second read-write open of a disk fails because it is locked", () => {
  const path = tempImage(4096);
  const first = RawDisk.open(path);
  assert.throws(
    () => RawDisk.open(path),
    (error: unknown) =>
      error instanceof DiskError &&
      error.message.includes(`disk ${path} is in use by another process (locked)`),
  );
  assert.throws(() => RawDisk.open(path, { readOnly: true }), /locked/);
  first.close();
  first.close();
  const again = RawDisk.open(path);
  again.close();
  Deno.removeSync(path);
});

Deno.test("several read-only opens share a disk but exclude a writer", () => {
  const path = tempImage(4096);
  const a = RawDisk.open(path, { readOnly: true });
  const b = RawDisk.open(path, { readOnly: true });
  assert.throws(() => RawDisk.open(path), /locked/);
  a.close();
  b.close();
  Deno.removeSync(path);
});

Deno.test("resize() changes the size and the file", () => {
  const path = tempImage(4096);
  using disk = RawDisk.open(path);
  disk.resize(8192);
  assert.equal(disk.size, 8192);
  assert.equal(Deno.statSync(path).size, 8192);
  disk.write(8000, [Uint8Array.of(1)]);
  Deno.removeSync(path);
});

Deno.test("direct I/O works with aligned and misaligned buffers", () => {
  const path = Deno.makeTempFileSync({ dir: "/var/tmp", suffix: ".img" });
  Deno.writeFileSync(path, new Uint8Array(16384).map((_, i) => i % 251));
  using disk = RawDisk.open(path, { direct: true });
  const misaligned = new Uint8Array(1024 + 1).subarray(1);
  disk.read(512, [misaligned]);
  assert.equal(misaligned[0], 512 % 251);
  assert.equal(misaligned[1023], 1535 % 251);
  disk.write(4096, [misaligned]);
  const back = new Uint8Array(1024);
  disk.read(4096, [back]);
  assert.deepEqual(back, misaligned);
  assert.throws(() => disk.read(100, [new Uint8Array(512)]), /alignment/);
  Deno.removeSync(path);
});
