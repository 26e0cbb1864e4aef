/**
 * The lock that makes one daemon the owner of a state directory: an open file
 * description lock (fcntl F_OFD_SETLK) on `<stateDir>/daemon.lock`, holding the owner's
 * pid as text. The kernel drops the lock when the owner dies, even by SIGKILL, so a
 * stale lock file never blocks a restart.
 *
 * @module
 */

import { join } from "node:path";
import { closeFd, cString, errno, libc } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "../../ffi/libc_symbols.ts";
import { EACCES, EAGAIN, SyscallError } from "../../ffi/errno.ts";

const F_OFD_SETLK = 37;
const F_WRLCK = 1;

/** Another process holds the state directory. */
export class StateLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateLockError";
  }
}

/** An exclusive hold on a state directory; `release()` (or process death) ends it. */
export class StateLock {
  readonly path: string;
  #fd: number;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /** Takes the lock of `stateDir` (which must exist) or throws `StateLockError`. */
  static acquire(stateDir: string): StateLock {
    const path = join(stateDir, "daemon.lock");
    // O_CLOEXEC: the VMMs this daemon spawns must not inherit (and so keep) the lock.
    const fd = libc().open(cString(path), O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
    if (fd < 0) {
      throw new StateLockError(
        `Cannot open ${path}: ${new SyscallError("open", errno()).message}`,
      );
    }
    // struct flock: l_type i16, l_whence i16, pad, l_start i64, l_len i64, l_pid i32, pad.
    // l_start = l_len = 0 covers the whole file.
    const flock = new Uint8Array(32);
    new DataView(flock.buffer).setInt16(0, F_WRLCK, true);
    if (libc().fcntl_lock(fd, F_OFD_SETLK, flock) !== 0) {
      const code = errno();
      closeFd(fd);
      if (code === EAGAIN || code === EACCES) {
        const owner = readOwner(path);
        throw new StateLockError(
          `Another daemon${owner ? ` (pid ${owner})` : ""} owns ${stateDir}; stop it ` +
            `first (systemctl stop denovisor) or give this one another --state-dir`,
        );
      }
      throw new StateLockError(
        `Cannot lock ${path}: ${new SyscallError("fcntl", code).message}`,
      );
    }
    const text = cString(`${Deno.pid}\n`).subarray(0, -1);
    libc().ftruncate(fd, 0n);
    libc().pwrite(fd, Deno.UnsafePointer.of(text), BigInt(text.length), 0n);
    return new StateLock(path, fd);
  }

  /** Drops the lock. Idempotent. */
  release(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(path).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
