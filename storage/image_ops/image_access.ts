/**
 * The one place image_ops meets the image layer (storage/image.ts), plus what the
 * operations need beyond it: a chain opened over a base the caller holds read-write
 * (commit; the chain's own read-only open of the base would conflict with its lock), and
 * a qcow2 image opened without its backing file (rebase -u, whose old base may be gone).
 *
 * @module
 */

import { backingPath, type BlockExtent, type Image, openImage, probeFormat } from "../image.ts";
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
 * Opens the qcow2 image at `path` and its backing chain read-only, except that where the
 * chain reaches the file `basePath`, `base` (an image the caller has opened, read-write
 * for commit) stands in for it; closing the returned image closes `base` too.
 */
export function openChainOver(path: string, basePath: string, base: Image): Image {
  const real = Deno.realPathSync(basePath);
  const seen: string[] = [];
  const open = (at: string, format: string | undefined): Image => {
    const file = Deno.realPathSync(at);
    if (file === real) return base;
    if (seen.includes(file)) {
      throw new ImageError(`Image ${path} has a backing chain that loops at ${at}`);
    }
    seen.push(file);
    if (format === "raw" || (format === undefined && probeFormat(at) === "raw")) {
      return openImage(at, { readOnly: true, format: "raw" });
    }
    return Qcow2Disk.open(at, {
      readOnly: true,
      openBacking: (name, backingFormat) => open(backingPath(at, name), backingFormat),
    });
  };
  return open(path, "qcow2");
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
