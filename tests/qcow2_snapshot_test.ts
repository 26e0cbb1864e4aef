/**
 * Internal snapshots made, applied and deleted by Denovisor behave as `qemu-img snapshot`
 * expects: qemu-img lists them, reads their content, applies them, and finds the image
 * clean after every step; and Denovisor applies snapshots qemu-img made.
 */
import assert from "node:assert/strict";
import { createImage, openImage } from "../storage/image.ts";
import {
  applySnapshot,
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
} from "../storage/qcow2/snapshots.ts";
import {
  assertClean,
  assertSameContent,
  prng,
  qemuImg,
  tempDir,
} from "../storage/qcow2/testing/qemu_tools.ts";

const MIB = 1024 * 1024;

function scribble(path: string, seed: number): void {
  const random = prng(seed);
  const image = openImage(path);
  try {
    for (let n = 0; n < 60; n++) {
      const length = 1 + Math.floor(random() * 200_000);
      const offset = Math.floor(random() * (image.size - length));
      image.write(offset, [new Uint8Array(length).fill((seed + n) & 0xff)]);
      if (n % 10 === 9) image.discard(offset, Math.min(length, 70_000));
    }
  } finally {
    image.close();
  }
}

function snapshotContent(path: string, name: string, out: string): void {
  qemuImg("convert", "-l", name, "-O", "raw", path, out);
}

Deno.test("snapshots made by Denovisor are listed, read and applied by qemu-img, and stay clean", () => {
  using dir = tempDir();
  const path = `${dir.path}/s.qcow2`;
  createImage(path, { format: "qcow2", size: 16 * MIB });
  scribble(path, 1);
  qemuImg("convert", "-O", "raw", path, `${dir.path}/one.raw`);
  createSnapshot(path, "one");
  assertClean(path);
  scribble(path, 2);
  qemuImg("convert", "-O", "raw", path, `${dir.path}/two.raw`);
  createSnapshot(path, "two");
  assert.throws(() => createSnapshot(path, "two"), /already has a snapshot named two/);
  scribble(path, 3);
  assertClean(path);
  assert.deepEqual(listSnapshots(path).map((s) => [s.id, s.name]), [["1", "one"], ["2", "two"]]);
  assert.match(qemuImg("snapshot", "-l", path), /one[\s\S]*two/);
  snapshotContent(path, "one", `${dir.path}/one.check.raw`);
  assertSameContent(`${dir.path}/one.check.raw`, "raw", `${dir.path}/one.raw`, "raw");
  snapshotContent(path, "two", `${dir.path}/two.check.raw`);
  assertSameContent(`${dir.path}/two.check.raw`, "raw", `${dir.path}/two.raw`, "raw");

  applySnapshot(path, "one");
  assertClean(path);
  assertSameContent(path, "qcow2", `${dir.path}/one.raw`, "raw");
  scribble(path, 4); // writes after apply copy the shared clusters
  assertClean(path);
  snapshotContent(path, "one", `${dir.path}/one.again.raw`);
  assertSameContent(`${dir.path}/one.again.raw`, "raw", `${dir.path}/one.raw`, "raw");

  deleteSnapshot(path, "one");
  assertClean(path);
  deleteSnapshot(path, "2");
  assertClean(path);
  assert.deepEqual(listSnapshots(path), []);
  assert.throws(() => applySnapshot(path, "one"), /has no snapshot one/);

  createSnapshot(path, "three");
  qemuImg("snapshot", "-a", "three", path);
  assertClean(path);
});

Deno.test("Denovisor applies and deletes a snapshot qemu-img made", () => {
  using dir = tempDir();
  const path = `${dir.path}/q.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "8M");
  scribble(path, 9);
  qemuImg("convert", "-O", "raw", path, `${dir.path}/before.raw`);
  qemuImg("snapshot", "-c", "theirs", path);
  scribble(path, 10);
  applySnapshot(path, "theirs");
  assertClean(path);
  assertSameContent(path, "qcow2", `${dir.path}/before.raw`, "raw");
  deleteSnapshot(path, "theirs");
  assertClean(path);
  scribble(path, 11);
  assertClean(path);
});
