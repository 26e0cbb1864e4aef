/**
 * Open file description locks (fcntl F_OFD_SETLK) on a whole file. Unlike POSIX record
 * locks they belong to the open file description, not the process: a second open of the
 * same file in the same process conflicts, and closing the last descriptor of the
 * description (or the owner's death, even by SIGKILL) drops the lock. The daemon's state
 * directory lock and the disks' shared/exclusive locks both use them.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { EACCES, EAGAIN, SyscallError } from "./errno.ts";

/** fcntl(2) command: set an OFD lock without waiting. */
export const F_OFD_SETLK = 37;
/** struct flock l_type values. */
export const F_RDLCK = 0;
export const F_WRLCK = 1;

/** A shared (read) lock coexists with other shared locks; an exclusive one with none. */
export type OfdLockMode = "shared" | "exclusive";

/**
 * Tries to lock all of `fd`'s file without waiting. Returns 0 when the lock is taken, or
 * the errno (EAGAIN or EACCES) when another open file description holds a conflicting
 * lock, so the caller can say who is in the way. Any other failure throws a
 * `SyscallError` naming `fcntl`.
 */
export function tryOfdLock(fd: number, mode: OfdLockMode): number {
  // struct flock: l_type i16, l_whence i16, (pad), l_start i64, l_len i64, l_pid i32, (pad).
  // l_whence SEEK_SET (0) with l_start 0 and l_len 0 covers the whole file, however it grows.
  const flock = new Uint8Array(32);
  new DataView(flock.buffer).setInt16(0, mode === "shared" ? F_RDLCK : F_WRLCK, true);
  if (libc().fcntl_lock(fd, F_OFD_SETLK, flock) === 0) return 0;
  const code = errno();
  if (code === EAGAIN || code === EACCES) return code;
  throw new SyscallError("fcntl", code);
}

/** fcntl(2) command: which OFD lock would conflict with the one described. */
export const F_OFD_GETLK = 36;
/** struct flock l_type: no lock (to release one, or GETLK's "nothing in the way"). */
export const F_UNLCK = 2;

function flockOf(type: number, offset: number, length: number): Uint8Array<ArrayBuffer> {
  const flock = new Uint8Array(32);
  const view = new DataView(flock.buffer);
  view.setInt16(0, type, true);
  view.setBigInt64(8, BigInt(offset), true);
  view.setBigInt64(16, BigInt(length), true);
  return flock;
}

/**
 * Takes (`shared` or `exclusive`) or releases (`unlock`) an OFD lock on `length` bytes at
 * `offset` of `fd`'s file, without waiting: 0, or the errno (EAGAIN or EACCES) of a
 * conflict. Byte-range locks are how QEMU publishes which permissions an image's users
 * hold and refuse to share (see storage/image_lock.ts).
 */
export function tryOfdRangeLock(
  fd: number,
  mode: OfdLockMode | "unlock",
  offset: number,
  length: number,
): number {
  const type = mode === "unlock" ? F_UNLCK : mode === "shared" ? F_RDLCK : F_WRLCK;
  if (libc().fcntl_lock(fd, F_OFD_SETLK, flockOf(type, offset, length)) === 0) return 0;
  const code = errno();
  if (code === EAGAIN || code === EACCES) return code;
  throw new SyscallError("fcntl", code);
}

/**
 * Whether another open file description holds a lock on `length` bytes at `offset` that
 * conflicts with an exclusive lock there, i.e. any lock at all (F_OFD_GETLK). Locks of
 * `fd`'s own description never count.
 */
export function ofdRangeLocked(fd: number, offset: number, length: number): boolean {
  const flock = flockOf(F_WRLCK, offset, length);
  if (libc().fcntl_lock(fd, F_OFD_GETLK, flock) !== 0) {
    throw new SyscallError("fcntl(F_OFD_GETLK)", errno());
  }
  return new DataView(flock.buffer).getInt16(0, true) !== F_UNLCK;
}
