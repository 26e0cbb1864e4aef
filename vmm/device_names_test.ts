import assert from "node:assert/strict";
import { diskName, nicName } from "./device_names.ts";

Deno.test("diskName() follows Linux: vda..vdz, then vdaa..vdzz, then vdaaa", () => {
  assert.equal(diskName(0), "vda");
  assert.equal(diskName(1), "vdb");
  assert.equal(diskName(25), "vdz");
  assert.equal(diskName(26), "vdaa");
  assert.equal(diskName(27), "vdab");
  assert.equal(diskName(51), "vdaz");
  assert.equal(diskName(52), "vdba");
  assert.equal(diskName(701), "vdzz");
  assert.equal(diskName(702), "vdaaa");
  assert.equal(diskName(18277), "vdzzz");
  assert.equal(diskName(18278), "vdaaaa");
});

Deno.test("diskName() gives every index its own name", () => {
  const names = new Set(Array.from({ length: 20000 }, (_, i) => diskName(i)));
  assert.equal(names.size, 20000);
  for (const name of names) assert.match(name, /^vd[a-z]+$/);
});

Deno.test("diskName() and nicName() refuse negative and fractional indexes", () => {
  for (const bad of [-1, 1.5, NaN]) {
    assert.throws(() => diskName(bad), RangeError);
    assert.throws(() => nicName(bad), RangeError);
  }
  assert.equal(nicName(0), "net0");
  assert.equal(nicName(12), "net12");
});
