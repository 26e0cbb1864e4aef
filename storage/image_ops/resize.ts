/**
 * Changing an image's virtual size (`qemu-img resize`). Growing adds a range that reads
 * as zeroes; shrinking throws away everything past the new end, so it is refused unless
 * asked for explicitly (qemu-img's `--shrink`).
 *
 * @module
 */

import { ImageError, type ImageFormat, openImage } from "./image_access.ts";

/** Options of `resizeImage`. */
export interface ResizeOptions {
  /** Allow the new size to be smaller than the current one. */
  shrink?: boolean;
  /** Format of the image; probed when omitted. */
  format?: ImageFormat;
}

/** Sizes before and after a resize. */
export interface ResizeResult {
  oldSize: number;
  newSize: number;
}

/** Resizes the image at `path` to `newSize` bytes. */
export function resizeImage(
  path: string,
  newSize: number,
  options: ResizeOptions = {},
): ResizeResult {
  if (!Number.isSafeInteger(newSize) || newSize < 0) {
    throw new ImageError(`Cannot resize ${path} to ${newSize} bytes: not a valid size`);
  }
  const image = openImage(path, { format: options.format });
  try {
    const oldSize = image.size;
    if (newSize < oldSize && !options.shrink) {
      throw new ImageError(
        `Cannot shrink ${path} from ${oldSize} to ${newSize} bytes without the shrink option: ` +
          `the data past the new end would be lost; use --shrink if that is intended`,
      );
    }
    if (newSize === oldSize) return { oldSize, newSize };
    if (image.format === "qcow2" && newSize % 512 !== 0) {
      throw new ImageError(
        `Cannot resize ${path} to ${newSize} bytes: a qcow2 size must be a multiple of 512`,
      );
    }
    if (image.resize === undefined) {
      throw new ImageError(`Cannot resize ${path}: its ${image.format} backend cannot resize`);
    }
    image.resize(newSize);
    // An overlay grown over a longer backing file would show the backing's bytes in the
    // new range; it must read as zeroes (as qemu-img makes it).
    const below = image.backing?.size ?? 0;
    if (newSize > oldSize && below > oldSize) {
      image.writeZeroes(oldSize, Math.min(newSize, below) - oldSize);
    }
    image.flush();
    return { oldSize, newSize: image.size };
  } finally {
    image.close();
  }
}
