/**
 * The one place image_ops meets the image layer (storage/image.ts), plus the one thing
 * the operations need beyond it: opening an overlay on top of a base the caller already
 * holds read-write (for commit, whose base would otherwise be locked by the overlay's own
 * read-only open of it).
 *
 * @module
 */

import type { BlockExtent, Image } from "../image.ts";
import { ImageError } from "../qcow2/errors.ts";
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
  probeFormat,
} from "../image.ts";

/**
 * Opens the qcow2 overlay at `path` read-only on top of `base`, an image the caller has
 * already opened; closing the overlay closes `base`.
 */
export function openOverlayOver(path: string, base: Image): Image {
  return Qcow2Disk.open(path, { readOnly: true, openBacking: () => base });
}

/** A qcow2 image opened on its own: what it stores itself, and its header essentials. */
export interface OverlayTop {
  image: Image;
  clusterSize: number;
  snapshotCount: number;
}

/**
 * Opens the qcow2 image at `path` read-only without opening its backing file (which may
 * be missing: `rebase -u` exists to repair that). Reading a range the image does not
 * store itself fails; block status reports such ranges as unallocated.
 */
export function openOverlayTop(path: string): OverlayTop {
  const image = Qcow2Disk.open(path, {
    readOnly: true,
    openBacking: (name) => new AbsentBacking(name),
  });
  return { image, clusterSize: image.clusterSize, snapshotCount: image.header.nbSnapshots };
}

/** Stands in for a backing file that is not opened. */
class AbsentBacking implements Image {
  readonly format = "raw" as const;
  readonly size = Number.MAX_SAFE_INTEGER;
  readonly readOnly = true;
  readonly id = "absent";
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  read(): void {
    throw new ImageError(`Cannot read backing file ${this.path}: it was not opened`);
  }
  write(): void {
    throw new ImageError(`Cannot write backing file ${this.path}: it is read-only`);
  }
  flush(): void {}
  discard(): void {
    this.write();
  }
  writeZeroes(): void {
    this.write();
  }
  close(): void {}
  blockStatus(offset: number, length: number): BlockExtent {
    return { offset, length, allocated: false, zero: true, depth: 0 };
  }
}
