/**
 * Helpers of the qcow2 I/O path: views over scatter-gather buffer lists, and the inflated
 * compressed cluster last read (guests read a cluster in several requests).
 *
 * @module
 */

import { constants, inflateRawSync } from "node:zlib";
import { ImageError } from "./errors.ts";
import { compressedRange } from "./format.ts";
import type { HostFile } from "./host_file.ts";

/** Reads and inflates compressed clusters, caching the last one. */
export class CompressedClusters {
  readonly #file: HostFile;
  readonly #clusterBits: number;
  readonly #clusterSize: number;
  #key = "";
  #data?: Uint8Array;

  constructor(file: HostFile, clusterBits: number) {
    this.#file = file;
    this.#clusterBits = clusterBits;
    this.#clusterSize = 2 ** clusterBits;
  }

  /** The cluster's bytes for the L2 entry halves `hi`, `lo` (raw deflate, zlib). */
  cluster(hi: number, lo: number): Uint8Array {
    const key = `${hi}:${lo}`;
    if (key === this.#key && this.#data !== undefined) return this.#data;
    const path = this.#file.path;
    const { offset, end } = compressedRange(hi, lo, this.#clusterBits);
    if (offset >= this.#file.size || end - offset > 2 * this.#clusterSize + 1024) {
      throw new ImageError(
        `Image ${path} is malformed: a compressed cluster at 0x${
          offset.toString(16)
        } lies beyond the end of the file or is too long`,
      );
    }
    const stored = this.#file.readBytes(offset, end - offset);
    let data: Uint8Array;
    try {
      // At most one byte more than a cluster is ever inflated: a crafted stream that would
      // inflate to gigabytes stops there (a decompression bomb).
      data = inflateRawSync(stored, {
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: this.#clusterSize + 1,
      });
    } catch (error) {
      const tooLarge = (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
      throw new ImageError(
        `Image ${path} is malformed: the compressed cluster at 0x${offset.toString(16)} ${
          tooLarge ? `inflates to more than ${this.#clusterSize} bytes` : "does not inflate"
        }`,
        { cause: error },
      );
    }
    if (data.length !== this.#clusterSize) {
      throw new ImageError(
        `Image ${path} is malformed: the compressed cluster at 0x${
          offset.toString(16)
        } inflates to ${data.length} bytes, not ${this.#clusterSize}`,
      );
    }
    this.#data = data.subarray(0, this.#clusterSize);
    this.#key = key;
    return this.#data;
  }
}

/** Views of `buffers` covering bytes [from, from + length) of their concatenation. */
export function slice(buffers: readonly Uint8Array[], from: number, length: number): Uint8Array[] {
  const views: Uint8Array[] = [];
  let skip = from;
  let left = length;
  for (const buffer of buffers) {
    if (left === 0) break;
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    const take = Math.min(buffer.length - skip, left);
    views.push(buffer.subarray(skip, skip + take));
    left -= take;
    skip = 0;
  }
  return views;
}

/** Copies `data` from byte `from` into `views`, in order. */
export function copyOut(data: Uint8Array, from: number, views: readonly Uint8Array[]): void {
  let at = from;
  for (const view of views) {
    view.set(data.subarray(at, at + view.length));
    at += view.length;
  }
}
