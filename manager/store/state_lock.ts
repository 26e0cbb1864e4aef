/**
 * The lock that makes one daemon the owner of a state directory: an open file
 * description lock (fcntl F_OFD_SETLK) on `<stateDir>/daemon.lock`, holding the owner's
 * pid as text. The kernel drops the lock when the owner dies, even by SIGKILL, so a
 * stale lock file never blocks a restart.
 *
 * @module
 */

import { join } from "node:path";
import { closeFd, cString, errno } from "../../ffi/libc.ts";
import { ftruncate, pwrite, tryOpen } from "../../ffi/fs.ts";
import { tryOfdLock } from "../../ffi/ofd_lock.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "../../ffi/libc_symbols.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { DenovisorError, type ErrorCode } from "../../common/errors.ts";

/** Another process holds the state directory (`busy`), or its lock file is unusable. */
export class StateLockError extends DenovisorError {
  constructor(message: string, code: ErrorCode = "busy") {
    super(code, message);
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
    const fd = tryOpen(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
    if (fd < 0) {
      throw new StateLockError(
        `Cannot open ${path}: ${new SyscallError("open", errno()).message}`,
        "internal",
      );
    }
    let held: number;
    try {
      held = tryOfdLock(fd, "exclusive");
    } catch (error) {
      closeFd(fd);
      throw new StateLockError(`Cannot lock ${path}: ${(error as Error).message}`, "internal");
    }
    if (held !== 0) {
      closeFd(fd);
      const owner = readOwner(path);
      throw new StateLockError(
        `Another daemon${owner ? ` (pid ${owner})` : ""} owns ${stateDir}; stop it ` +
          `first (systemctl stop denovisor) or give this one another --state-dir`,
      );
    }
    const text = cString(`${Deno.pid}\n`).subarray(0, -1);
    ftruncate(fd, 0);
    pwrite(fd, text, 0);
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
