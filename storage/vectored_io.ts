/**
 * Positioned, vectored I/O on one file descriptor: preadv/pwritev in batches of IOV_MAX,
 * EINTR retried, short transfers completed piece by piece, and a read that meets the end
 * of the file (someone shrank it) filled with zeroes, as a sparse tail reads. Raw disks
 * and the qcow2 host file both move their bytes through it.
 *
 * @module
 */

import { EINTR } from "../ffi/errno.ts";
import { errno, libc, pointerOf } from "../ffi/libc.ts";
import { DiskError } from "./disk.ts";
import { IovecArray } from "./iovec.ts";

export type TransferKind = "read" | "write";

/** How a `VectoredIo` reaches its file: the descriptor now, and how to word a failure. */
export interface VectoredIoTarget {
  /** For messages. */
  readonly path: string;
  /** The open descriptor (checked by the caller). */
  fd(): number;
  /** The error for a failed system call `call` with `code`. */
  ioError(call: string, code: number): DiskError;
}

/** Moves buffers to and from one file at given offsets, with one reusable iovec array. */
export class VectoredIo {
  readonly #iov = new IovecArray();
  readonly #target: VectoredIoTarget;

  constructor(target: VectoredIoTarget) {
    this.#target = target;
  }

  /** Transfers every byte of `buffers`, in order, at `offset`. */
  transfer(kind: TransferKind, offset: number, buffers: readonly Uint8Array[]): void {
    let position = offset;
    let index = 0;
    while (index < buffers.length) {
      const first = index;
      this.#iov.clear();
      while (index < buffers.length && !this.#iov.full) this.#iov.add(buffers[index++]);
      const length = this.#iov.length;
      if (length === 0) continue;
      const done = this.#vector(kind, position);
      if (done < length) this.#finish(kind, position, buffers, first, index, done);
      position += length;
    }
  }

  /** One preadv/pwritev of the current iovec array; EINTR is retried. */
  #vector(kind: TransferKind, position: number): number {
    const call = kind === "read" ? libc().preadv : libc().pwritev;
    for (;;) {
      const fd = this.#target.fd();
      const result = Number(call(fd, this.#iov.bytes, this.#iov.count, BigInt(position)));
      if (result >= 0) return result;
      const code = errno();
      if (code !== EINTR) throw this.#target.ioError(kind === "read" ? "preadv" : "pwritev", code);
    }
  }

  /** Completes a batch the kernel did part of, one buffer at a time. */
  #finish(
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
        const n = this.#single(kind, piece, at);
        if (n === 0) {
          if (kind === "write") {
            throw new DiskError(`Cannot write disk ${this.#target.path}: no progress`);
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

  #single(kind: TransferKind, piece: Uint8Array, at: number): number {
    const call = kind === "read" ? libc().pread : libc().pwrite;
    for (;;) {
      const fd = this.#target.fd();
      const result = Number(call(fd, pointerOf(piece), BigInt(piece.length), BigInt(at)));
      if (result >= 0) return result;
      const code = errno();
      if (code !== EINTR) throw this.#target.ioError(kind === "read" ? "pread" : "pwrite", code);
    }
  }
}
