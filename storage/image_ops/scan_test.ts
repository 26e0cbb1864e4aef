import assert from "node:assert/strict";
import { firstDifference, firstNonZero, Progress, writeNonZero, ZERO_GRANULE } from "./scan.ts";
import { MemoryImage } from "./memory_image.ts";

Deno.test("firstNonZero() finds the first set byte, aligned or not", () => {
  const bytes = new Uint8Array(10000);
  assert.equal(firstNonZero(bytes), -1);
  bytes[7777] = 1;
  assert.equal(firstNonZero(bytes), 7777);
  assert.equal(firstNonZero(bytes.subarray(3)), 7774);
  bytes[1] = 9;
  assert.equal(firstNonZero(bytes), 1);
});

Deno.test("firstDifference() finds the first differing byte", () => {
  const a = new Uint8Array(5000);
  const b = new Uint8Array(5000);
  assert.equal(firstDifference(a, b), -1);
  b[4097] = 3;
  assert.equal(firstDifference(a, b), 4097);
  assert.equal(firstDifference(a.subarray(1), b.subarray(1)), 4096);
});

Deno.test("writeNonZero() skips all-zero granules and merges data granules", () => {
  const target = new MemoryImage("t", 1 << 20, { clusterSize: ZERO_GRANULE });
  const data = new Uint8Array(8 * ZERO_GRANULE);
  data[10] = 1; // granule 0
  data[ZERO_GRANULE + 5] = 2; // granule 1
  data[5 * ZERO_GRANULE] = 3; // granule 5
  const written = writeNonZero(target, 4 * ZERO_GRANULE, data);
  assert.equal(written, 3 * ZERO_GRANULE);
  const states = target.states.slice(4, 12);
  assert.deepEqual(states, [
    "data",
    "data",
    "unallocated",
    "unallocated",
    "unallocated",
    "data",
    "unallocated",
    "unallocated",
  ]);
  const back = new Uint8Array(data.length);
  target.read(4 * ZERO_GRANULE, [back]);
  assert.deepEqual(back, data);
});

Deno.test("Progress reports start, advances and the end once", () => {
  const seen: number[] = [];
  const progress = new Progress(100, (done, total) => {
    assert.equal(total, 100);
    seen.push(done);
  });
  progress.advance(40);
  progress.advance(80);
  progress.finish();
  assert.deepEqual(seen, [0, 40, 100]);
});
