/**
 * A full file system: writes fail with ENOSPC as a DiskError, the image stays consistent
 * (`qemu-img check` finds no corruption) and every write that succeeded reads back. Needs
 * root (a small tmpfs is mounted).
 */
import assert from "node:assert/strict";
import { DiskError } from "../storage/disk.ts";
import { createImage, openImage } from "../storage/image.ts";
import { qemuCheck, run, tempDir } from "../storage/qcow2/testing/qemu_tools.ts";

const ENOSPC = 28;
const CHUNK = 192 * 1024;

/** Why a tmpfs cannot be mounted here (the test is then reported as ignored), or undefined. */
function tmpfsUnavailable(): string | undefined {
  using dir = tempDir();
  try {
    const mounted = run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.path]);
    if (mounted.code !== 0) return mounted.stderr.trim() || `mount exited ${mounted.code}`;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  run("umount", [dir.path]);
  return undefined;
}

const noTmpfs = tmpfsUnavailable();
if (noTmpfs) {
  console.error(`!!! ENOSPC TEST SKIPPED: cannot mount a tmpfs (${noTmpfs}); run as root`);
}

Deno.test({
  name: "a full file system fails writes with ENOSPC and leaves the qcow2 image consistent" +
    (noTmpfs ? " [SKIPPED: cannot mount a tmpfs; run as root]" : ""),
  ignore: noTmpfs !== undefined,
}, () => {
  using dir = tempDir();
  const mounted = run("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", dir.path]);
  assert.equal(mounted.code, 0, `mount -t tmpfs: ${mounted.stderr}`);
  try {
    const path = `${dir.path}/full.qcow2`;
    createImage(path, { format: "qcow2", size: 64 * 1024 * 1024, clusterSize: 65536 });
    const image = openImage(path);
    const written: number[] = [];
    let failure: unknown;
    try {
      for (let n = 0; n < 64; n++) {
        // Scattered offsets, so L2 tables and data clusters are allocated as it fills up.
        const offset = ((n * 37) % 64) * 1024 * 1024 + 4096;
        try {
          image.write(offset, [new Uint8Array(CHUNK).fill(n + 1)]);
          written.push(offset);
        } catch (error) {
          failure = error;
          break;
        }
      }
      assert.ok(failure instanceof DiskError, `expected a DiskError, got ${failure}`);
      assert.equal(failure.errno, ENOSPC, failure.message);
      assert.ok(written.length > 3, `only ${written.length} writes fitted`);
      // Writes into clusters that already exist still work; new ones fail again cleanly.
      image.write(written[0], [new Uint8Array(4096).fill(0xee)]);
      assert.throws(() => image.write(63 * 1024 * 1024, [new Uint8Array(CHUNK)]), DiskError);
      image.flush();
    } finally {
      image.close();
    }
    const { code, result } = qemuCheck(path);
    assert.ok(code === 0 || code === 3, `qemu-img check: ${JSON.stringify(result)}`);
    const reader = openImage(path, { readOnly: true });
    try {
      written.forEach((offset, n) => {
        const back = new Uint8Array(CHUNK);
        reader.read(offset, [back]);
        const expected = new Uint8Array(CHUNK).fill(n + 1);
        if (n === 0) expected.fill(0xee, 0, 4096);
        assert.deepEqual(back, expected, `write ${n} at ${offset} reads back`);
      });
    } finally {
      reader.close();
    }
  } finally {
    run("umount", [dir.path]);
  }
});
