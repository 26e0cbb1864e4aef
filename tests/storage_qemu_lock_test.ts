/**
 * Denovisor and QEMU lock images the same way (storage/image_lock.ts, QEMU's
 * block/file-posix.c): while qemu-io holds an image, Denovisor's opens are refused or
 * allowed as QEMU's own would be, and while Denovisor holds one, qemu-io sees it as it
 * sees a QEMU user that takes the same permissions.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/libc_symbols.ts";
import { createImage, type ImageFormat, openImage } from "../storage/image.ts";
import {
  imageLockHolders,
  PERM_CONSISTENT_READ,
  PERM_RESIZE,
  PERM_WRITE,
} from "../storage/image_lock.ts";

const MIB = 1024 * 1024;
const haveQemuIo = new Deno.Command("sh", { args: ["-c", "command -v qemu-io"] }).outputSync()
  .success;

type Mode = "rw" | "ro";

/** What other users hold and refuse to share on the image at `path`, seen from a new fd. */
function holders(path: string): { held: number; unshared: number } {
  const fd = openFile(path, O_RDONLY | O_CLOEXEC);
  try {
    return imageLockHolders(fd);
  } finally {
    closeFd(fd);
  }
}

/** qemu-io holding `path` open until the returned function is called. */
async function qemuIoHolds(path: string, format: ImageFormat, mode: Mode) {
  const child = new Deno.Command("qemu-io", {
    args: [...(mode === "ro" ? ["-r"] : []), "-f", format, path],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // qemu-io has the image open once its consistent-read byte is locked.
  for (let i = 0; i < 200 && (holders(path).held & PERM_CONSISTENT_READ) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.ok(holders(path).held & PERM_CONSISTENT_READ, "qemu-io never opened the image");
  return async () => {
    await child.stdin.close();
    await child.status;
    await child.stderr.cancel();
  };
}

/** Whether qemu-io can open `path` in `mode` (and read a sector) now. */
function qemuIoOpens(path: string, format: ImageFormat, mode: Mode): boolean {
  const out = new Deno.Command("qemu-io", {
    args: [...(mode === "ro" ? ["-r"] : []), "-f", format, "-c", "read 0 512", path],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (/read 512\/512 bytes/.test(text)) return true;
  assert.match(text, /lock/, `qemu-io failed for another reason: ${text}`);
  return false;
}

/** Whether `qemu-img info` (which takes QEMU's shared locks) can open `path` now. */
function qemuImgInfoOpens(path: string, format: ImageFormat): boolean {
  const out = new Deno.Command("qemu-img", {
    args: ["info", "-f", format, path],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (out.success) return true;
  assert.match(new TextDecoder().decode(out.stderr), /lock/);
  return false;
}

/** Whether Denovisor can open `path` in `mode` now. */
function denovisorOpens(path: string, format: ImageFormat, mode: Mode): boolean {
  try {
    openImage(path, { format, readOnly: mode === "ro" }).close();
    return true;
  } catch (error) {
    assert.match((error as Error).message, /in use by another process \(locked\)/);
    return false;
  }
}

function image(format: ImageFormat): { path: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "qemu-lock-" });
  const path = `${dir}/disk.${format}`;
  createImage(path, { format, size: MIB });
  return { path, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

/**
 * The QEMU rules, for a second user taking `perm` and sharing `shared` beside a first
 * that holds `held` and refuses `unshared`.
 */
function qemuAllows(
  first: { held: number; unshared: number },
  second: { perm: number; shared: number },
): boolean {
  return (second.perm & first.unshared) === 0 && (first.held & ~second.shared & 0xf) === 0;
}

const DENOVISOR = {
  rw: { perm: PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE, unshared: PERM_WRITE | PERM_RESIZE },
  ro: { perm: PERM_CONSISTENT_READ, unshared: PERM_WRITE | PERM_RESIZE },
};

Deno.test({
  name:
    "while qemu-io holds an image, Denovisor's opens are refused or allowed as QEMU's rules say, and as qemu-io's own are for qcow2",
  ignore: !haveQemuIo,
  async fn() {
    for (const format of ["raw", "qcow2"] as const) {
      for (const holderMode of ["rw", "ro"] as const) {
        using disk = image(format);
        const release = await qemuIoHolds(disk.path, format, holderMode);
        try {
          const first = holders(disk.path);
          for (const mode of ["rw", "ro"] as const) {
            const ours = DENOVISOR[mode];
            const expected = qemuAllows(first, { perm: ours.perm, shared: 0xf & ~ours.unshared });
            const where = `${format}, qemu-io ${holderMode}, Denovisor ${mode}`;
            assert.equal(denovisorOpens(disk.path, format, mode), expected, where);
            // qcow2 makes qemu-io take what Denovisor takes: its own answer must agree.
            if (format === "qcow2") {
              assert.equal(qemuIoOpens(disk.path, format, mode), expected, `${where} (qemu-io)`);
            }
          }
          if (holderMode === "rw") {
            // A QEMU writer keeps Denovisor out entirely (the first complaint).
            assert.equal(denovisorOpens(disk.path, format, "ro"), false);
          }
        } finally {
          await release();
        }
      }
    }
  },
});

Deno.test({
  name:
    "while Denovisor holds an image, qemu-io sees the lock bytes a QEMU qcow2 user holds and is refused or allowed accordingly",
  ignore: !haveQemuIo,
  async fn() {
    for (const format of ["raw", "qcow2"] as const) {
      for (const mode of ["rw", "ro"] as const) {
        using disk = image(format);
        // The bytes qemu-io takes on a qcow2 image in this mode: Denovisor takes the same.
        using reference = image("qcow2");
        const release = await qemuIoHolds(reference.path, "qcow2", mode);
        const qemuBytes = holders(reference.path);
        await release();
        const held = openImage(disk.path, { format, readOnly: mode === "ro" });
        try {
          const ourBytes = holders(disk.path);
          assert.deepEqual(ourBytes, qemuBytes, `${format} ${mode}: the same lock bytes as QEMU`);
          assert.deepEqual(ourBytes, {
            held: DENOVISOR[mode].perm,
            unshared: DENOVISOR[mode].unshared,
          });
          assert.equal(
            qemuIoOpens(disk.path, format, "rw"),
            false,
            `${format} ${mode}: qemu-io rw`,
          );
          // qemu-io -r of a raw image shares everything and refuses nothing, so it may read
          // beside a writer, as beside a QEMU guest; a qcow2 reader refuses writers.
          const readerAllowed = mode === "ro" || format === "raw";
          // qemu-img info as well: it reads a qcow2 image only when nobody writes it.
          assert.equal(
            qemuImgInfoOpens(disk.path, format),
            readerAllowed,
            `${format} ${mode}: qemu-img info`,
          );
          assert.equal(
            qemuIoOpens(disk.path, format, "ro"),
            readerAllowed,
            `${format} ${mode}: qemu-io ro`,
          );
        } finally {
          held.close();
        }
        assert.equal(qemuIoOpens(disk.path, format, "rw"), true, "closing released every lock");
      }
    }
  },
});
