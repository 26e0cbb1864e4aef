/**
 * Copying volume bytes: instant reflink clones (the FICLONE ioctl, which XFS and btrfs
 * implement by sharing extents) with a sparse copy as the fallback where the filesystem
 * cannot share extents or the files live on two filesystems.
 *
 * @module
 */

import { closeFd, errno, ioctlBytes, ioctlValue, openFile } from "../../ffi/libc.ts";
import { fsync } from "../../ffi/fs.ts";
import { O_CLOEXEC, O_CREAT } from "../../ffi/libc_symbols.ts";
import { EINVAL, SyscallError } from "../../ffi/errno.ts";
import { openImageFile } from "../image_file.ts";

/** ioctl(FICLONE) = _IOW(0x94, 9, int): make the destination share all the source's extents. */
const FICLONE = 0x40049409n;
const O_WRONLY = 1;
const O_EXCL = 0o200;
/** errnos that mean "this filesystem (pair) cannot reflink": fall back to copying. */
const EXDEV = 18;
const ENOTTY = 25;
const EOPNOTSUPP = 95;
const NO_REFLINK = new Set([EXDEV, ENOTTY, EOPNOTSUPP, EINVAL]);
const CHUNK = 1024 * 1024;

/** Reports how far a long copy is: `done` of `total` bytes. */
export type ProgressCallback = (done: number, total: number) => void;

/** How a clone was made. */
export type CloneMethod = "reflink" | "copy";

/**
 * Creates `target` (which must not exist) as a copy of the regular file `source`: a
 * reflink when the filesystem can share extents, else a sparse copy (zero runs stay holes).
 */
export async function cloneFile(
  source: string,
  target: string,
  options: { onProgress?: ProgressCallback; reflink?: boolean } = {},
): Promise<CloneMethod> {
  const size = Deno.statSync(source).size;
  if (options.reflink !== false && tryReflink(source, target)) {
    options.onProgress?.(size, size);
    return "reflink";
  }
  await copyBytes(source, target, { size, sparse: true, create: true, ...options });
  return "copy";
}

/** FICLONE `source` into a new `target`; false (and no target left) when not supported. */
function tryReflink(source: string, target: string): boolean {
  // Never blocks: a FIFO or device swapped in for the source is refused (image_file.ts).
  const from = openImageFile(source, { readOnly: true, lock: false }).fd;
  let to = -1;
  try {
    to = openFile(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600);
    let code = 0;
    try {
      ioctlValue(to, FICLONE, from, "FICLONE");
      unwrapSync(to, target);
      return true;
    } catch (error) {
      if (!(error instanceof SyscallError) || error.call !== "FICLONE") throw error;
      code = error.errno;
    }
    closeFd(to);
    to = -1;
    Deno.removeSync(target);
    if (NO_REFLINK.has(code)) return false;
    throw new SyscallError(`ioctl(FICLONE, ${source} -> ${target})`, code);
  } finally {
    closeFd(from);
    closeFd(to);
  }
}

function unwrapSync(fd: number, path: string): void {
  if (fsync(fd) < 0) throw new SyscallError(`fsync(${path})`, errno());
}

/** Options of `copyBytes`. */
export interface CopyOptions {
  /** Bytes to copy (a block device's size is not in its stat). */
  size: number;
  /** Leave holes where the source reads as zeroes (files only: a device keeps old data). */
  sparse: boolean;
  /** Create the target (it must not exist); otherwise it must exist (a device). */
  create: boolean;
  onProgress?: ProgressCallback;
}

/** Copies the first `size` bytes of `source` to `target`, in 1 MiB chunks, then syncs. */
export async function copyBytes(source: string, target: string, options: CopyOptions) {
  closeFd(openImageFile(source, { readOnly: true, lock: false }).fd); // a file or a block device
  const input = await Deno.open(source, { read: true });
  let output: Deno.FsFile | undefined;
  try {
    output = await Deno.open(
      target,
      options.create ? { write: true, createNew: true, mode: 0o600 } : { write: true },
    );
    const buffer = new Uint8Array(CHUNK);
    let done = 0;
    let lastReport = 0;
    while (done < options.size) {
      const want = Math.min(CHUNK, options.size - done);
      let filled = 0;
      while (filled < want) {
        const n = await input.read(buffer.subarray(filled, want));
        if (n === null) {
          throw new Error(`${source} ended at ${done + filled} of ${options.size} bytes`);
        }
        filled += n;
      }
      const chunk = buffer.subarray(0, want);
      if (!(options.sparse && isZero(chunk))) {
        await output.seek(done, Deno.SeekMode.Start);
        let written = 0;
        while (written < want) written += await output.write(chunk.subarray(written));
      }
      done += want;
      if (options.onProgress && (done - lastReport >= 64 * CHUNK || done === options.size)) {
        options.onProgress(done, options.size);
        lastReport = done;
      }
    }
    if (options.create) await output.truncate(options.size);
    await output.sync();
  } catch (error) {
    output?.close();
    output = undefined;
    if (options.create) await Deno.remove(target).catch(() => {});
    throw error;
  } finally {
    input.close();
    output?.close();
  }
}

/** Whether every byte of `bytes` is zero. */
export function isZero(bytes: Uint8Array): boolean {
  if (bytes.byteOffset % 8 === 0 && bytes.length % 8 === 0) {
    const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Makes `length` bytes at `offset` of the block device open as `fd` read as zeroes. */
export function zeroOutDevice(fd: number, offset: number, length: number, path: string): void {
  const range = new BigUint64Array([BigInt(offset), BigInt(length)]);
  // BLKZEROOUT = _IO(0x12, 127): the device writes zeroes (or unmaps with zeroing) itself.
  const BLKZEROOUT = 0x127fn;
  ioctlBytes(fd, BLKZEROOUT, new Uint8Array(range.buffer), `ioctl(BLKZEROOUT, ${path})`);
}
