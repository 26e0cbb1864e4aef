import assert from "node:assert/strict";
import { closeFd, openFile, pointerOf } from "./libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "./libc_symbols.ts";
import { addressOf, IOV_MAX, IovecArray, preadv, pwritev } from "./iovec.ts";

const pointer = (bytes: Uint8Array) => Number(Deno.UnsafePointer.value(pointerOf(bytes)));

Deno.test("addressOf() matches the real address for views of small and large buffers", () => {
  const large = new Uint8Array(1 << 20);
  for (const offset of [0, 1, 4096, 999_999]) {
    assert.equal(addressOf(large.subarray(offset)), pointer(large.subarray(offset)));
  }
  const small = new Uint8Array(100);
  assert.equal(addressOf(small.subarray(7)), pointer(small.subarray(7)));
});

Deno.test("IovecArray records base and length per buffer, skips empty ones and stops at IOV_MAX", () => {
  const memory = new Uint8Array(1 << 20);
  const iov = new IovecArray();
  iov.add(memory.subarray(16, 48));
  iov.add(memory.subarray(0, 0));
  iov.add(memory.subarray(4096, 8192));
  assert.equal(iov.count, 2);
  assert.equal(iov.length, 32 + 4096);
  const words = new BigUint64Array(iov.bytes.buffer, 0, 4);
  assert.equal(words[0], BigInt(pointer(memory) + 16));
  assert.equal(words[1], 32n);
  assert.equal(words[2], BigInt(pointer(memory) + 4096));
  assert.equal(words[3], 4096n);
  iov.clear();
  assert.equal(iov.length, 0);
  for (let i = 0; i < IOV_MAX; i++) iov.add(memory.subarray(i, i + 1));
  assert.equal(iov.full, true);
  assert.throws(() => iov.add(memory.subarray(0, 1)), RangeError);
});

Deno.test("IovecArray.tryAdd() keeps the asked number of entries free", () => {
  const memory = new Uint8Array(IOV_MAX);
  const iov = new IovecArray();
  for (let i = 0; i < IOV_MAX - 1; i++) {
    assert.equal(iov.tryAdd(memory.subarray(i, i + 1), 1), true);
  }
  assert.equal(iov.tryAdd(memory.subarray(0, 1), 1), false);
  assert.equal(iov.tryAdd(memory.subarray(0, 0), 1), true, "an empty buffer always fits");
  assert.equal(iov.count, IOV_MAX - 1);
  assert.equal(iov.tryAdd(memory.subarray(0, 1)), true, "the reserved entry");
  assert.equal(iov.full, true);
  assert.equal(iov.tryAdd(memory.subarray(0, 1)), false);
});

Deno.test("pwritev() and preadv() move every buffer of the array, in order", () => {
  const path = Deno.makeTempFileSync();
  const fd = openFile(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  try {
    const iov = new IovecArray();
    iov.add(new TextEncoder().encode("hello "));
    iov.add(new TextEncoder().encode("world"));
    assert.equal(pwritev(fd, iov, 3), 11);
    const first = new Uint8Array(4);
    const second = new Uint8Array(7);
    iov.clear();
    iov.add(first);
    iov.add(second);
    assert.equal(preadv(fd, iov, 3), 11);
    assert.equal(new TextDecoder().decode(first) + new TextDecoder().decode(second), "hello world");
    assert.equal(preadv(-1, iov, 0), -1);
  } finally {
    closeFd(fd);
    Deno.removeSync(path);
  }
});

Deno.test("tryAddRange() records the same entries as tryAdd() of the view, across sources", () => {
  const regions = [new Uint8Array(1 << 20), new Uint8Array(1 << 17), new Uint8Array(300)];
  const ranges: Array<[number, number, number]> = [
    [0, 10, 100],
    [1, 5, 7],
    [0, 4096, 1500],
    [2, 3, 20],
    [1, 0, 1],
    [0, 999_000, 1000],
  ];
  const byView = new IovecArray();
  const byRange = new IovecArray();
  for (const [r, offset, length] of ranges) {
    byView.add(regions[r].subarray(offset, offset + length));
    assert.equal(byRange.tryAddRange(regions[r], offset, length), true);
  }
  assert.equal(byRange.count, byView.count);
  assert.equal(byRange.length, byView.length);
  assert.deepEqual(byRange.bytes.subarray(0, 16 * 6), byView.bytes.subarray(0, 16 * 6));
});

Deno.test("truncate() and dropFront() keep the remaining entries and their total length", () => {
  const bytes = new Uint8Array(1 << 16);
  const list = new IovecArray();
  const expected = new IovecArray();
  for (let i = 1; i <= 5; i++) list.tryAddRange(bytes, i * 100, i);
  for (let i = 3; i <= 4; i++) expected.tryAddRange(bytes, i * 100, i);
  list.truncate(4);
  assert.equal(list.length, 1 + 2 + 3 + 4);
  list.dropFront(2);
  assert.equal(list.count, 2);
  assert.equal(list.length, 3 + 4);
  assert.deepEqual(list.bytes.subarray(0, 32), expected.bytes.subarray(0, 32));
  list.dropFront(5);
  assert.equal(list.count, 0);
  assert.equal(list.length, 0);
});
