/**
 * Shared pieces of the image operations: walking an image by block status, finding
 * zeroes in buffers, and progress reports.
 *
 * @module
 */

import type { BlockExtent, Image } from "./image_access.ts";

/** The most bytes one step of a copy or compare reads at once. */
export const CHUNK_SIZE = 1 << 20;
/**
 * The longest extent asked of blockStatus at once: zero runs need no reading, so a sparse
 * multi-TiB image is walked in a few thousand steps instead of millions.
 */
export const STATUS_SPAN = 1 << 30;
/**
 * Zero detection granule: a granule of zeroes in the source is not written, so the output
 * stays sparse (qemu-img convert's default `-S 4k`).
 */
export const ZERO_GRANULE = 4096;
/** qemu-img compare reports differences at 512-byte sector granularity. */
export const SECTOR_SIZE = 512;

/** Called as a long operation advances: `done` of `total` bytes handled. */
export type ProgressCallback = (done: number, total: number) => void;

/**
 * Walks `[start, end)` of `image` one extent at a time, calling `visit` with the extent
 * clipped to the range: extents that read as zeroes are up to `STATUS_SPAN` long, others
 * at most `CHUNK_SIZE` (they get read). `visit` returning false stops the walk.
 */
export function forEachExtent(
  image: Image,
  start: number,
  end: number,
  visit: (extent: BlockExtent) => boolean | void,
): void {
  let offset = start;
  while (offset < end) {
    const wanted = Math.min(STATUS_SPAN, end - offset);
    const extent = image.blockStatus(offset, wanted);
    // A backend that reports nothing would loop forever; treat it as one data chunk.
    const limit = extent.zero ? wanted : Math.min(CHUNK_SIZE, wanted);
    const length = extent.length > 0 ? Math.min(extent.length, limit) : limit;
    if (visit({ ...extent, offset, length }) === false) return;
    offset += length;
  }
}

/**
 * Whether some layer of `image`'s chain stores the run `extent` describes (as data or as
 * zeroes), as qemu-img's "present"/allocated-above flag: the layer that `depth` names is
 * asked, since a run unallocated all the way down names the bottom layer too. The run's
 * length may come back shorter, to keep one answer.
 */
export function storedInChain(
  image: Image,
  extent: BlockExtent,
): { present: boolean; length: number } {
  if (extent.allocated) return { present: true, length: extent.length };
  let layer: Image | undefined = image;
  for (let depth = 0; depth < extent.depth && layer !== undefined; depth++) layer = layer.backing;
  if (layer === undefined || extent.offset >= layer.size) {
    return { present: false, length: extent.length };
  }
  // A raw file stores every byte of its size (holes are stored zeroes), as qemu sees it.
  if (layer.format === "raw") {
    return { present: true, length: Math.min(extent.length, layer.size - extent.offset) };
  }
  const own = layer.blockStatus(extent.offset, Math.min(extent.length, layer.size - extent.offset));
  return { present: own.allocated, length: Math.max(1, Math.min(extent.length, own.length)) };
}

/** Whether every byte of `bytes` is zero. */
export function isZero(bytes: Uint8Array): boolean {
  return firstNonZero(bytes) < 0;
}

/** Index of the first non-zero byte of `bytes`, or -1. Scans 32 bits at a time. */
export function firstNonZero(bytes: Uint8Array): number {
  let index = 0;
  const words = bytes.byteOffset % 4 === 0 ? bytes.length >> 2 : 0;
  if (words > 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    let word = 0;
    while (word < words && view[word] === 0) word++;
    index = word * 4;
  }
  while (index < bytes.length && bytes[index] === 0) index++;
  return index < bytes.length ? index : -1;
}

/** Index of the first byte where `a` and `b` (same length) differ, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  let index = 0;
  const aligned = a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0;
  const words = aligned ? a.length >> 2 : 0;
  if (words > 0) {
    const va = new Uint32Array(a.buffer, a.byteOffset, words);
    const vb = new Uint32Array(b.buffer, b.byteOffset, words);
    let word = 0;
    while (word < words && va[word] === vb[word]) word++;
    index = word * 4;
  }
  while (index < a.length && a[index] === b[index]) index++;
  return index < a.length ? index : -1;
}

/**
 * Writes the non-zero granules of `data` (the bytes at `offset`) to `target`, merging
 * neighbours into one write; all-zero granules are left alone, so they stay holes or
 * unallocated clusters in a freshly created target (or are handed to `onZeroes`, for a
 * target that may hold old data). Granules are aligned to absolute offsets so a chunk
 * boundary never splits one. Returns the bytes written.
 */
export function writeNonZero(
  target: Image,
  offset: number,
  data: Uint8Array,
  granule = ZERO_GRANULE,
  onZeroes?: (offset: number, length: number) => void,
): number {
  let written = 0;
  let runStart = -1;
  let zeroStart = -1;
  let at = 0;
  const endData = (end: number) => {
    if (runStart < 0) return;
    target.write(offset + runStart, [data.subarray(runStart, end)]);
    written += end - runStart;
    runStart = -1;
  };
  const endZeroes = (end: number) => {
    if (zeroStart < 0) return;
    onZeroes?.(offset + zeroStart, end - zeroStart);
    zeroStart = -1;
  };
  while (at < data.length) {
    const next = Math.min(data.length, at + granule - ((offset + at) % granule));
    if (isZero(data.subarray(at, next))) {
      endData(at);
      if (zeroStart < 0) zeroStart = at;
    } else {
      endZeroes(at);
      if (runStart < 0) runStart = at;
    }
    at = next;
  }
  endData(data.length);
  endZeroes(data.length);
  return written;
}

/** Reads `length` bytes at `offset` of `image` into (a view of) `buffer`. */
export function readInto(image: Image, offset: number, length: number, buffer: Uint8Array) {
  const view = buffer.subarray(0, length);
  image.read(offset, [view]);
  return view;
}

/** A progress reporter that tolerates no callback and reports the end exactly once. */
export class Progress {
  readonly #callback?: ProgressCallback;
  readonly #total: number;
  #done = 0;

  constructor(total: number, callback?: ProgressCallback) {
    this.#total = total;
    this.#callback = callback;
    callback?.(0, total);
  }

  /** Counts `bytes` more as done. */
  advance(bytes: number): void {
    this.#done = Math.min(this.#total, this.#done + bytes);
    if (this.#done < this.#total) this.#callback?.(this.#done, this.#total);
  }

  /** Reports completion. */
  finish(): void {
    this.#done = this.#total;
    this.#callback?.(this.#total, this.#total);
  }
}
