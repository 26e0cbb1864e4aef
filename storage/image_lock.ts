/**
 * Image locks in QEMU's layout (block/file-posix.c, raw_apply_lock_bytes and
 * raw_check_lock_bytes), so that Denovisor and QEMU see each other's users of an image
 * exactly as QEMU sees QEMU. Every user holds a shared OFD lock on byte 100 + bit for each
 * permission it takes, and on byte 200 + bit for each permission it refuses to share; it
 * may open only if nobody refuses a permission it takes (bytes 200 + bit) and nobody holds
 * a permission it refuses (bytes 100 + bit). The bits are QEMU's: consistent read 0,
 * write 1, write unchanged 2, resize 3 (QEMU before 6.1 also had graph mod, bit 4, which
 * no image user took).
 *
 * Denovisor takes what a QEMU disk without share-rw takes: a reader holds consistent
 * read and refuses write and resize (as QEMU's qcow2 and backing files do); a writer holds
 * consistent read, write and resize and refuses write and resize. So readers share with
 * readers, a writer is alone, and a QEMU guest writing an image keeps Denovisor out.
 *
 * @module
 */

import { ofdRangeLocked, tryOfdRangeLock } from "../ffi/ofd_lock.ts";
import { SyscallError } from "../ffi/errno.ts";
import { DiskError } from "./disk.ts";

/** QEMU's BLK_PERM_* bits. */
export const PERM_CONSISTENT_READ = 0x01;
export const PERM_WRITE = 0x02;
export const PERM_WRITE_UNCHANGED = 0x04;
export const PERM_RESIZE = 0x08;
const PERM_NAMES = ["consistent read", "write", "write unchanged", "resize"];

/** Where the permission bytes start (RAW_LOCK_PERM_BASE). */
export const LOCK_PERM_BASE = 100;
/** Where the "not shared" bytes start (RAW_LOCK_SHARED_BASE). */
export const LOCK_SHARED_BASE = 200;

/** What one user of an image takes and what it lets others take. */
export interface LockPermissions {
  /** Permissions held. */
  perm: number;
  /** Permissions others may hold meanwhile. */
  shared: number;
}

/** A reader: consistent reads, nobody writes or resizes underneath. */
export const READER: LockPermissions = {
  perm: PERM_CONSISTENT_READ,
  shared: PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED,
};
/** A writer: reads, writes and resizes, alone. */
export const WRITER: LockPermissions = {
  perm: PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE,
  shared: PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED,
};

/**
 * Publishes `fd`'s permissions on the image at `path` (read-only: READER, else WRITER)
 * and checks them against every other user's. Throws a `DiskError` saying the disk is in
 * use when they conflict; the caller closes `fd`, which drops the locks taken here.
 */
export function lockImage(path: string, fd: number, readOnly: boolean): void {
  const { perm, shared } = readOnly ? READER : WRITER;
  for (let bit = 0; bit < PERM_NAMES.length; bit++) {
    const mask = 1 << bit;
    if ((perm & mask) !== 0) take(path, fd, LOCK_PERM_BASE + bit, readOnly);
    if ((shared & mask) === 0) take(path, fd, LOCK_SHARED_BASE + bit, readOnly);
  }
  for (let bit = 0; bit < PERM_NAMES.length; bit++) {
    const mask = 1 << bit;
    if ((perm & mask) !== 0 && locked(path, fd, LOCK_SHARED_BASE + bit)) {
      throw inUse(
        path,
        readOnly,
        `another user does not share the "${PERM_NAMES[bit]}" permission`,
      );
    }
    if ((shared & mask) === 0 && locked(path, fd, LOCK_PERM_BASE + bit)) {
      throw inUse(path, readOnly, `another user holds the "${PERM_NAMES[bit]}" permission`);
    }
  }
}

/** The permission bits other users hold and refuse to share on `fd`'s image, for tests and reports. */
export function imageLockHolders(fd: number): { held: number; unshared: number } {
  let held = 0;
  let unshared = 0;
  for (let bit = 0; bit < PERM_NAMES.length; bit++) {
    if (ofdRangeLocked(fd, LOCK_PERM_BASE + bit, 1)) held |= 1 << bit;
    if (ofdRangeLocked(fd, LOCK_SHARED_BASE + bit, 1)) unshared |= 1 << bit;
  }
  return { held, unshared };
}

/**
 * Drops every lock `lockImage` took on `fd`'s open file description. Closing the last
 * descriptor does that by itself; this is for an open file description that outlives the
 * image, such as the one a sandboxed VMM was handed, which stays open for the life of the
 * process: a live migration's source must let go of the image before the destination
 * takes it.
 */
export function releaseImageLocks(fd: number): void {
  tryOfdRangeLock(fd, "unlock", LOCK_PERM_BASE, PERM_NAMES.length);
  tryOfdRangeLock(fd, "unlock", LOCK_SHARED_BASE, PERM_NAMES.length);
}

function take(path: string, fd: number, offset: number, readOnly: boolean): void {
  let code: number;
  try {
    code = tryOfdRangeLock(fd, "shared", offset, 1);
  } catch (error) {
    throw lockFailure(path, error);
  }
  // Only an exclusive lock on the byte (not QEMU's layout: an older Denovisor or another
  // tool locking the whole file) refuses a shared one.
  if (code !== 0) throw inUse(path, readOnly, "another process locked the whole file");
}

function locked(path: string, fd: number, offset: number): boolean {
  try {
    return ofdRangeLocked(fd, offset, 1);
  } catch (error) {
    throw lockFailure(path, error);
  }
}

function inUse(path: string, readOnly: boolean, why: string): DiskError {
  return new DiskError(
    `Cannot open disk ${path}: disk ${path} is in use by another process (locked); ${why}${
      readOnly ? "" : "; stop the other user or open it read-only"
    }`,
    { code: "busy" },
  );
}

function lockFailure(path: string, error: unknown): DiskError {
  const code = error instanceof SyscallError ? error.errno : undefined;
  return new DiskError(`Cannot lock disk ${path}: ${(error as Error).message}`, {
    errno: code,
    cause: error,
  });
}
