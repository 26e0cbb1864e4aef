import assert from "node:assert/strict";
import { resizeImage } from "./resize.ts";

Deno.test("resizeImage() grows a raw image and refuses to shrink without the shrink option", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/disk.raw`;
    Deno.writeFileSync(path, new Uint8Array(8192).fill(1));
    assert.deepEqual(resizeImage(path, 1 << 20), { oldSize: 8192, newSize: 1 << 20 });
    assert.equal(Deno.statSync(path).size, 1 << 20);
    assert.throws(() => resizeImage(path, 4096), /without the shrink option.*--shrink/);
    assert.equal(Deno.statSync(path).size, 1 << 20);
    assert.deepEqual(resizeImage(path, 4096, { shrink: true }), {
      oldSize: 1 << 20,
      newSize: 4096,
    });
    assert.deepEqual(Deno.readFileSync(path), new Uint8Array(4096).fill(1));
    assert.throws(() => resizeImage(path, -1, { shrink: true }), /not a valid size/);
    assert.throws(() => resizeImage(`${dir}/missing`, 4096), /no such file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
