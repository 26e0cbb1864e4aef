/**
 * The one way an image file is opened (the VMM's disks, every backing file at every depth,
 * the probe, `img` and the pool manager): only a regular file or a block device is an
 * image. A FIFO would block the opening thread (the daemon's event loop) until a writer
 * came; a character device (/dev/zero) or a kernel file (/proc/self/environ) would be
 * read as an endless or empty disk. So the path is stat'ed first, opened with O_NONBLOCK
 * (a FIFO swapped in meanwhile cannot block), and the descriptor checked again with fstat
 * (what was opened is what is used).
 *
 * @module
 */

import { closeFd, errno, ioctlBytes } from "../ffi/libc.ts";
import { tryOpen } from "../ffi/fs.ts";
import { handedFile } from "../common/handed_descriptors.ts";
import {
  addStatusFlags,
  clearNonBlocking,
  type FileKind,
  fstat,
  fstatfsType,
  PSEUDO_FILESYSTEMS,
  statusFlags,
} from "../ffi/file_stat.ts";
import { O_CLOEXEC, O_DIRECT, O_NONBLOCK, O_RDONLY, O_RDWR } from "../ffi/libc_symbols.ts";
import { EACCES, ENOENT, SyscallError } from "../ffi/errno.ts";
import { DiskError } from "./disk.ts";
import { ImageError } from "./qcow2/errors.ts";
import { lockImage } from "./image_lock.ts";

/** ioctl(BLKGETSIZE64): the size of a block device in bytes. */
const BLKGETSIZE64 = 0x80081272n;
const EISDIR = 21;
const EROFS = 30;
const O_ACCMODE = 3;

/** Options of `openImageFile`. */
export interface ImageFileOptions {
  readOnly?: boolean;
  /** O_DIRECT. */
  direct?: boolean;
  /** Take the image lock (storage/image_lock.ts); default true. */
  lock?: boolean;
}

/** An open image file. */
export interface ImageFile {
  fd: number;
  kind: "file" | "block device";
  /** Bytes (a block device's size by BLKGETSIZE64). */
  size: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  /** Device and inode in hex, at most 20 bytes: the disk's stable id. */
  id: string;
}

/**
 * Opens the image at `path` (following symlinks): refuses anything but a regular file or
 * a block device, before and after opening, without ever blocking; then locks it.
 */
export function openImageFile(path: string, options: ImageFileOptions = {}): ImageFile {
  const readOnly = options.readOnly ?? false;
  const handed = handedFile(path);
  if (handed !== undefined) return checkImageFd(path, handed, options);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw openError(path, ENOENT, readOnly);
    if (error instanceof Deno.errors.PermissionDenied) throw openError(path, EACCES, readOnly);
    throw new DiskError(`Cannot open disk ${path}: ${(error as Error).message}`);
  }
  refuseKind(path, kindOf(info));
  const flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK |
    (options.direct ? O_DIRECT : 0);
  // O_NONBLOCK only keeps a FIFO swapped in after the stat from blocking this open; it is
  // cleared once fstat has shown a file or a block device (where some file systems, FUSE,
  // would otherwise honour it).
  const fd = tryOpen(path, flags);
  if (fd < 0) throw openError(path, errno(), readOnly);
  return checkImageFd(path, fd, options);
}

/**
 * Checks what `fd` (opened from `path`, or handed to a sandboxed VMM for it: the
 * launcher opened it as root) is, then locks it; closes it on failure.
 */
function checkImageFd(path: string, fd: number, options: ImageFileOptions): ImageFile {
  const readOnly = options.readOnly ?? false;
  try {
    if (!readOnly && (statusFlags(fd) & O_ACCMODE) === O_RDONLY) {
      throw openError(path, EACCES, false); // handed read-only, wanted read-write
    }
    if (options.direct) addStatusFlags(fd, O_DIRECT);
    const stat = fstat(fd);
    const kind = refuseKind(path, stat.kind);
    const filesystem = PSEUDO_FILESYSTEMS.get(fstatfsType(fd));
    if (filesystem !== undefined) {
      throw new ImageError(
        `Cannot open image ${path}: it is a ${filesystem} kernel file, not a disk image`,
      );
    }
    clearNonBlocking(fd);
    if (options.lock ?? true) lockImage(path, fd, readOnly);
    const size = kind === "block device" ? blockDeviceSize(path, fd) : stat.size;
    const id = diskId(stat.dev, stat.ino);
    return { fd, kind, size, blocks: stat.blocks, id };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/** A disk's stable id from its device and inode: hex, at most 20 bytes (virtio-blk's). */
export function diskId(dev: bigint | number, ino: bigint | number): string {
  return `${dev.toString(16)}-${ino.toString(16)}`.slice(0, 20);
}

/**
 * The device and inode of the image at `path`, as decimal strings: of the descriptor
 * handed for it when there is one (a jailed VMM cannot see the path), else of the path.
 * Throws what stat or fstat throws.
 */
export function imageDeviceInode(path: string): { device: string; inode: string } {
  const handed = handedFile(path);
  if (handed === undefined) {
    const info = Deno.statSync(path);
    return { device: String(info.dev), inode: String(info.ino) };
  }
  try {
    const stat = fstat(handed);
    return { device: String(stat.dev), inode: String(stat.ino) };
  } finally {
    closeFd(handed);
  }
}

/** The identity of the file at `path` (device and inode), whatever name reached it. */
export function fileIdentity(path: string): string {
  const info = Deno.statSync(path);
  return `${info.dev}:${info.ino}`;
}

function kindOf(info: Deno.FileInfo): FileKind {
  if (info.isFile) return "file";
  if (info.isDirectory) return "directory";
  if (info.isBlockDevice) return "block device";
  if (info.isCharDevice) return "character device";
  if (info.isFifo) return "fifo";
  if (info.isSocket) return "socket";
  return "symlink";
}

function refuseKind(path: string, kind: FileKind): "file" | "block device" {
  if (kind === "file" || kind === "block device") return kind;
  const what = kind === "fifo" ? "a FIFO" : `a ${kind}`;
  throw new ImageError(
    `Cannot open image ${path}: it is ${what}; an image is a regular file or a block device`,
  );
}

/** The `DiskError` for a failed open(2) of a disk image. */
export function openError(path: string, code: number, readOnly: boolean): DiskError {
  const reasons: Record<number, string> = {
    [ENOENT]: "no such file",
    [EACCES]: readOnly
      ? "permission denied"
      : "permission denied; open it read-only or fix its mode",
    [EISDIR]: "it is a directory",
    [EROFS]: "read-only file system; open it read-only",
  };
  const reason = reasons[code] ?? new SyscallError("open", code).message;
  return new DiskError(`Cannot open disk ${path}: ${reason}`, {
    errno: code,
    code: code === ENOENT ? "not_found" : code === EACCES ? "forbidden" : "internal",
  });
}

function blockDeviceSize(path: string, fd: number): number {
  const out = new BigUint64Array(1);
  try {
    ioctlBytes(fd, BLKGETSIZE64, new Uint8Array(out.buffer), "BLKGETSIZE64");
  } catch (error) {
    throw new DiskError(`Cannot size disk ${path}: ${(error as Error).message}`);
  }
  return Number(out[0]);
}
