/**
 * The one place image_ops meets the image layer (storage/image.ts), plus the one thing
 * the operations need beyond it: opening an overlay on top of a base the caller already
 * holds read-write (for commit, whose base would otherwise be locked by the overlay's own
 * read-only open of it).
 *
 * @module
 */

import type { Image } from "../image.ts";
import { Qcow2Disk } from "../qcow2/qcow2_disk.ts";

export {
  type BlockExtent,
  checkImage,
  type CheckResult,
  createImage,
  type CreateImageOptions,
  type Image,
  ImageError,
  type ImageFormat,
  type ImageInfo,
  imageInfo,
  openImage,
  type OpenImageOptions,
} from "../image.ts";

/**
 * Opens the qcow2 overlay at `path` read-only on top of `base`, an image the caller has
 * already opened; closing the overlay closes `base`.
 */
export function openOverlayOver(path: string, base: Image): Image {
  return Qcow2Disk.open(path, { readOnly: true, openBacking: () => base });
}
