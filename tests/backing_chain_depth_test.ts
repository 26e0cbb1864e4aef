/**
 * Backing chains: 256 qcow2 images deep is the most a chain may be (it opens and reads
 * through to its base); one more is refused with one clear error by openImage and by
 * `img info --backing-chain`, not a stack overflow or a file-descriptor exhaustion.
 */
import assert from "node:assert/strict";
import { createImage, openImage } from "../storage/image.ts";
import { ImageError } from "../storage/qcow2/errors.ts";
import { denovisor } from "./cli_support.ts";

const SIZE = 1024 * 1024;

/** Creates a chain of `depth` qcow2 images, l0 (with data) to the top; returns the top. */
function chain(dir: string, depth: number): string {
  createImage(`${dir}/l0.qcow2`, { format: "qcow2", size: SIZE });
  const base = openImage(`${dir}/l0.qcow2`);
  base.write(0, [new Uint8Array(512).fill(0x5a)]);
  base.close();
  for (let i = 1; i < depth; i++) {
    // Size and format given: creating a layer must not open the chain below it.
    createImage(`${dir}/l${i}.qcow2`, {
      format: "qcow2",
      size: SIZE,
      backingFile: `l${i - 1}.qcow2`,
      backingFormat: "qcow2",
    });
  }
  return `${dir}/l${depth - 1}.qcow2`;
}

Deno.test("a backing chain 256 images deep opens and reads through to its base", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chain-depth-" });
  try {
    const image = openImage(chain(dir, 256), { readOnly: true });
    try {
      const back = new Uint8Array(512);
      image.read(0, [back]);
      assert.deepEqual(back, new Uint8Array(512).fill(0x5a));
    } finally {
      image.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a backing chain 257 images deep is refused with one clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chain-depth-" });
  try {
    const top = chain(dir, 257);
    assert.throws(
      () => openImage(top, { readOnly: true }),
      (e: unknown) =>
        e instanceof ImageError && /has a backing chain deeper than 256/.test(e.message),
    );
    const r = await denovisor(["img", "info", "--backing-chain", top]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /backing chain deeper than 256/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a raw base counts towards the limit: 256 qcow2 layers on a raw base are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chain-depth-" });
  try {
    await Deno.writeFile(`${dir}/base.raw`, new Uint8Array(SIZE));
    for (let i = 0; i < 256; i++) {
      createImage(`${dir}/r${i}.qcow2`, {
        format: "qcow2",
        size: SIZE,
        backingFile: i === 0 ? "base.raw" : `r${i - 1}.qcow2`,
        backingFormat: i === 0 ? "raw" : "qcow2",
      });
    }
    assert.throws(
      () => openImage(`${dir}/r255.qcow2`, { readOnly: true }),
      (e: unknown) =>
        e instanceof ImageError && /has a backing chain deeper than 256/.test(e.message),
    );
    // One layer fewer (256 images in all) still opens.
    openImage(`${dir}/r254.qcow2`, { readOnly: true }).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
