/**
 * End to end: `denovisor run` serves a qcow2 overlay to the virtio-blk test guest, over a
 * raw base and over a qcow2 base. Afterwards `qemu-img check` finds the overlay clean, the
 * overlay holds exactly the base plus what the guest wrote, and the base is unchanged.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { denovisor, guest } from "./cli_support.ts";
import { createImage, openImage } from "../storage/image.ts";
import {
  assertClean,
  assertSameContent,
  qemuImg,
  tempDir,
} from "../storage/qcow2/testing/qemu_tools.ts";

const SECTOR = 512;
const SIZE = 16 * 1024 * 1024;
const CAPACITY = SIZE / SECTOR;

/** What guests/virtio_blk.c's fill_pattern writes to `count` sectors from `sector`. */
function guestWrite(expected: Uint8Array, sector: number, count: number, seed: number): void {
  for (let i = 0; i < count * SECTOR; i++) {
    expected[sector * SECTOR + i] = ((sector + Math.floor(i / SECTOR)) * 7 + i + seed) & 0xff;
  }
}

/** The disk after the guest's writable run: round trips, multi-descriptor, discard, zeroes. */
function expectedAfterGuest(base: Uint8Array): Uint8Array {
  const expected = base.slice();
  guestWrite(expected, 0, 1, 1);
  guestWrite(expected, CAPACITY / 2, 1, 2);
  guestWrite(expected, CAPACITY - 1, 1, 3);
  guestWrite(expected, CAPACITY - 8, 8, 4);
  guestWrite(expected, 8, 8, 0x5a);
  expected.fill(0, 64 * SECTOR, 80 * SECTOR); // DISCARD 64-71, WRITE_ZEROES 72-79
  return expected;
}

for (const baseFormat of ["raw", "qcow2"] as const) {
  kvmTest(`virtio-blk serves a qcow2 overlay on a ${baseFormat} base to a guest`, async () => {
    using dir = tempDir();
    const content = new Uint8Array(SIZE);
    for (let i = 0; i < SIZE; i += 64) content[i] = (i >> 6) & 0xff;
    Deno.writeFileSync(`${dir.path}/base.raw`, content);
    const base = `${dir.path}/base.${baseFormat}`;
    if (baseFormat === "qcow2") qemuImg("convert", "-O", "qcow2", `${dir.path}/base.raw`, base);
    const baseBefore = Deno.readFileSync(base);
    const overlay = `${dir.path}/overlay.qcow2`;
    createImage(overlay, { format: "qcow2", backingFile: `base.${baseFormat}` });
    const r = await denovisor(["run", "--kernel", guest("virtio_blk"), "--disk", overlay]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /virtio_blk: all passed \(0 failures\)/);
    assert.match(r.stdout, new RegExp(`capacity ${CAPACITY} sectors`));
    assertClean(overlay);
    Deno.writeFileSync(`${dir.path}/expected.raw`, expectedAfterGuest(content));
    assertSameContent(overlay, "qcow2", `${dir.path}/expected.raw`, "raw");
    assert.deepEqual(Deno.readFileSync(base), baseBefore, "the base image changed");
  });
}

kvmTest("a qcow2 overlay in use by one VM cannot be opened for writing by another", async () => {
  using dir = tempDir();
  createImage(`${dir.path}/base.raw`, { format: "raw", size: SIZE });
  const overlay = `${dir.path}/overlay.qcow2`;
  createImage(overlay, { format: "qcow2", backingFile: "base.raw" });
  const holder = openImage(overlay);
  try {
    const r = await denovisor(["run", "--kernel", guest("virtio_blk"), "--disk", overlay]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /in use by another process/);
  } finally {
    holder.close();
  }
});
