/**
 * Committing an overlay into its backing image (`qemu-img commit`): every range stored in
 * the overlay itself is written into the backing image, after which the backing image
 * alone reads as the overlay did.
 *
 * @module
 */

import { type Image, ImageError } from "./image_access.ts";
import type { CopyResult } from "./convert.ts";
import { CHUNK_SIZE, forEachExtent, Progress, type ProgressCallback, readInto } from "./scan.ts";

/**
 * Writes what `top` stores itself into `base` (writable): data as data, zero extents as
 * zeroes. `base` grows to `top`'s size first if it is smaller, as qemu-img does.
 */
export function commitImageData(
  top: Image,
  base: Image,
  options: { onProgress?: ProgressCallback } = {},
): CopyResult {
  if (base.readOnly) throw new ImageError(`Cannot commit into ${base.path}: it is read-only`);
  if (base.size < top.size) {
    if (base.resize === undefined) {
      throw new ImageError(
        `Cannot commit ${top.path} into ${base.path}: the base is smaller and cannot grow`,
      );
    }
    base.resize(top.size);
  }
  const buffer = new Uint8Array(CHUNK_SIZE);
  const progress = new Progress(top.size, options.onProgress);
  let bytesWritten = 0;
  forEachExtent(top, 0, top.size, (extent) => {
    const { offset, length } = extent;
    if (extent.allocated && extent.zero) {
      base.writeZeroes(offset, length);
    } else if (extent.allocated) {
      base.write(offset, [readInto(top, offset, length, buffer)]);
      bytesWritten += length;
    }
    progress.advance(length);
  });
  base.flush();
  progress.finish();
  return { virtualSize: top.size, bytesWritten };
}
