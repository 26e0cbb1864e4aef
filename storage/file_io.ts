/**
 * The system calls on one disk file that raw disks and the qcow2 host file share:
 * positioned, vectored I/O (preadv/pwritev in batches of IOV_MAX, short transfers
 * completed piece by piece, a read that meets the end of the file, because someone
 * shrank it, filled with zeroes as a sparse tail reads), fallocate, and calls retried on
 * EINTR, every failure worded the same way.
 *
 * @module
 */

import { EINTR, SyscallError } from "../ffi/errno.ts";
import { errno } from "../ffi/libc.ts";
import { fallocate, pread, pwrite } from "../ffi/fs.ts";
import { IovecArray, preadv, pwritev } from "../ffi/iovec.ts";
import { DiskError } from "./disk.ts";

export type TransferKind = "read" | "write";

/** Linux's EOPNOTSUPP: the file system cannot do this fallocate mode. */
const EOPNOTSUPP = 95;

/** The error for system call `call` failing with `code` on the disk at `path`. */
export function diskIoError(path: string, call: string, code: number): DiskError {
  const cause = new SyscallError(call, code);
  return new DiskError(`I/O on disk ${path} failed: ${cause.message}`, { errno: code, cause });
}

/**
 * System calls on one file, with one reusable iovec array. The caller passes its open
 * descriptor to each call (it checks that the file is open); `path` words the errors.
 */
export class FileIo {
  readonly #iov = new IovecArray();
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  /** Runs `call` (a system call returning 0 on success), retrying on EINTR. */
  retry(name: string, call: () => number): void {
    for (;;) {
      if (call() === 0) return;
      const code = errno();
      if (code !== EINTR) throw this.#error(name, code);
    }
  }

  /** fallocate(mode); false when the file system does not support `mode`. */
  fallocate(fd: number, mode: number, offset: number, length: number): boolean {
    for (;;) {
      if (fallocate(fd, mode, offset, length) === 0) return true;
      const code = errno();
      if (code === EOPNOTSUPP) return false;
      if (code !== EINTR) throw this.#error("fallocate", code);
    }
  }

  /** Transfers every byte of `buffers`, in order, at `offset`. */
  transfer(fd: number, kind: TransferKind, offset: number, buffers: readonly Uint8Array[]): void {
    let position = offset;
    let index = 0;
    while (index < buffers.length) {
      const first = index;
      this.#iov.clear();
      while (index < buffers.length && !this.#iov.full) this.#iov.add(buffers[index++]);
      const length = this.#iov.length;
      if (length === 0) continue;
      const done = this.#vector(fd, kind, position);
      if (done < length) this.#finish(fd, kind, position, buffers, first, index, done);
      position += length;
    }
  }

  /** One preadv/pwritev of the current iovec array; EINTR is retried. */
  #vector(fd: number, kind: TransferKind, position: number): number {
    const call = kind === "read" ? preadv : pwritev;
    for (;;) {
      const result = call(fd, this.#iov, position);
      if (result >= 0) return result;
      const code = errno();
      if (code !== EINTR) throw this.#error(kind === "read" ? "preadv" : "pwritev", code);
    }
  }

  /** Completes a batch the kernel did part of, one buffer at a time. */
  #finish(
    fd: number,
    kind: TransferKind,
    position: number,
    buffers: readonly Uint8Array[],
    first: number,
    end: number,
    done: number,
  ): void {
    let skip = done;
    let at = position + done;
    for (let i = first; i < end; i++) {
      let piece = buffers[i];
      if (skip >= piece.length) {
        skip -= piece.length;
        continue;
      }
      piece = piece.subarray(skip);
      skip = 0;
      while (piece.length > 0) {
        const n = this.#single(fd, kind, piece, at);
        if (n === 0) {
          if (kind === "write") {
            throw new DiskError(`Cannot write disk ${this.#path}: no progress`);
          }
          piece.fill(0);
          at += piece.length;
          break;
        }
        piece = piece.subarray(n);
        at += n;
      }
    }
  }

  #error(call: string, code: number): DiskError {
    return diskIoError(this.#path, call, code);
  }

  #single(fd: number, kind: TransferKind, piece: Uint8Array, at: number): number {
    const call = kind === "read" ? pread : pwrite;
    for (;;) {
      const result = call(fd, piece, at);
      if (result >= 0) return result;
      const code = errno();
      if (code !== EINTR) throw this.#error(kind === "read" ? "pread" : "pwrite", code);
    }
  }
}
