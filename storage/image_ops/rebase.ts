/**
 * Changing the backing file of a qcow2 overlay (`qemu-img rebase`). In safe mode the
 * overlay keeps reading exactly as before: wherever the old backing chain and the new
 * backing file differ under an unallocated range, the old contents are written into the
 * overlay. Unsafe mode (`-u`) only changes the backing file name, for when the new file
 * holds the same data (a moved or renamed base).
 *
 * The overlay is rebuilt under a temporary name and renamed over the old one when
 * complete, so a crash leaves the old overlay intact; the price is copying the data the
 * overlay stores itself, which qemu-img leaves in place.
 *
 * @module
 */

import {
  createImage,
  type Image,
  ImageError,
  type ImageFormat,
  openImage,
  openOverlayTop,
  probeFormat,
} from "./image_access.ts";
import type { CopyResult } from "./convert.ts";
import { buildThenReplace } from "./files.ts";
import {
  CHUNK_SIZE,
  firstDifference,
  forEachExtent,
  isZero,
  Progress,
  type ProgressCallback,
  readInto,
} from "./scan.ts";

/** Options of `rebaseImage`. */
export interface RebaseOptions {
  /** Format of the new backing file; probed when omitted. */
  backingFormat?: ImageFormat;
  /** Only change the name (qemu-img rebase -u): the new backing must hold the same data. */
  unsafe?: boolean;
  onProgress?: ProgressCallback;
}

/**
 * Makes `newBacking` (stored as given; relative to the overlay's folder; undefined or ""
 * for none) the backing file of the qcow2 overlay at `path`.
 */
export function rebaseImage(
  path: string,
  newBacking: string | undefined,
  options: RebaseOptions = {},
): CopyResult {
  if (probeFormat(path) !== "qcow2") {
    throw new ImageError(`Cannot rebase ${path}: only qcow2 images have a backing file`);
  }
  const backing = newBacking === "" ? undefined : newBacking;
  return buildThenReplace(path, "rebase", true, (temporary) => {
    // Unsafe mode never reads the old backing file, which may be gone (a moved base).
    const top = openOverlayTop(path);
    let old = top.image;
    try {
      if (top.snapshotCount > 0) {
        throw new ImageError(`Cannot rebase ${path}: it has internal snapshots; delete them first`);
      }
      if (!options.unsafe) {
        old.close();
        old = openImage(path, { readOnly: true, format: "qcow2" });
      }
      createImage(temporary, {
        format: "qcow2",
        size: old.size,
        clusterSize: top.clusterSize,
        backingFile: backing,
        backingFormat: options.backingFormat,
      });
      const target = openImage(temporary);
      try {
        const result = rebaseData(old, target, { ...options, newBase: target.backing });
        target.flush();
        return result;
      } finally {
        target.close();
      }
    } finally {
      old.close();
    }
  });
}

/**
 * Copies into `target` (a fresh overlay of `newBase`) what `old` stores itself and, unless
 * unsafe, every cluster where `old`'s backing chain reads differently from `newBase`.
 */
function rebaseData(
  old: Image,
  target: Image,
  options: RebaseOptions & { newBase?: Image },
): CopyResult {
  const bufferOld = new Uint8Array(CHUNK_SIZE);
  const bufferNew = new Uint8Array(CHUNK_SIZE);
  const progress = new Progress(old.size, options.onProgress);
  const granule = (target as { clusterSize?: number }).clusterSize ?? 65536;
  let bytesWritten = 0;
  forEachExtent(old, 0, old.size, (extent) => {
    const { offset, length } = extent;
    if (extent.allocated && extent.zero) {
      target.writeZeroes(offset, length);
    } else if (extent.allocated) {
      target.write(offset, [readInto(old, offset, length, bufferOld)]);
      bytesWritten += length;
    } else if (!options.unsafe) {
      // Zero runs of the old chain may be long; the new base is read a chunk at a time.
      for (let at = offset; at < offset + length; at += CHUNK_SIZE) {
        const piece = Math.min(CHUNK_SIZE, offset + length - at);
        const was = extent.zero
          ? bufferOld.fill(0, 0, piece).subarray(0, piece)
          : readInto(old, at, piece, bufferOld);
        const now = readBase(options.newBase, at, piece, bufferNew);
        bytesWritten += writeDifferences(target, at, was, now, granule);
      }
    }
    progress.advance(length);
  });
  progress.finish();
  return { virtualSize: old.size, bytesWritten };
}

/** The new base's bytes at `offset` (zeroes past its end, or without a base). */
function readBase(base: Image | undefined, offset: number, length: number, buffer: Uint8Array) {
  const view = buffer.subarray(0, length);
  const inside = base === undefined ? 0 : Math.max(0, Math.min(length, base.size - offset));
  if (inside > 0) base!.read(offset, [view.subarray(0, inside)]);
  view.fill(0, inside);
  return view;
}

/** Writes the granules (clusters, aligned to absolute offsets) where `was` and `now` differ. */
function writeDifferences(
  target: Image,
  offset: number,
  was: Uint8Array,
  now: Uint8Array,
  granule: number,
): number {
  let written = 0;
  for (let at = 0; at < was.length;) {
    const next = Math.min(was.length, at + granule - ((offset + at) % granule));
    const old = was.subarray(at, next);
    if (firstDifference(old, now.subarray(at, next)) >= 0) {
      if (isZero(old)) target.writeZeroes(offset + at, next - at);
      else target.write(offset + at, [old]);
      written += next - at;
    }
    at = next;
  }
  return written;
}
