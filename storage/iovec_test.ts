import assert from "node:assert/strict";
import { pointerOf } from "../ffi/libc.ts";
import { addressOf, IOV_MAX, IovecArray } from "./iovec.ts";

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
  for (let i = 0; i < IOV_MAX; i++) iov.add(memory.subarray(i, i + 1));
  assert.equal(iov.full, true);
  assert.throws(() => iov.add(memory.subarray(0, 1)), RangeError);
});
