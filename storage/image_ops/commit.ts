/**
 * Committing an overlay into its backing image (`qemu-img commit`): every range stored in
 * the overlay itself is written into the backing image, after which the backing image
 * alone reads as the overlay did. The overlay is then emptied (recreated with the same
 * backing file, size and cluster size), so it still reads the same, now from the base.
 *
 * @module
 */

import {
  createImage,
  type Image,
  ImageError,
  type ImageFormat,
  type ImageInfo,
  imageInfo,
  openImage,
  openOverlayOver,
} from "./image_access.ts";
import type { CopyResult } from "./convert.ts";
import { buildThenReplace } from "./files.ts";
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

/** Options of `commitImage`. */
export interface CommitOptions {
  /** Format of the overlay; probed when omitted (it must be qcow2). */
  format?: ImageFormat;
  /** When given, must name the overlay's backing image (committing deeper is refused). */
  base?: string;
  /** Keep the overlay's data instead of emptying it (qemu-img commit -d). */
  keepOverlay?: boolean;
  onProgress?: ProgressCallback;
}

/** Commits the overlay at `overlayPath` into its backing image (`qemu-img commit`). */
export function commitImage(overlayPath: string, options: CommitOptions = {}): CopyResult {
  const info = imageInfo(overlayPath, { format: options.format });
  const basePath = info.fullBackingFilename;
  if (info.format !== "qcow2" || basePath === undefined) {
    throw new ImageError(
      `Cannot commit ${overlayPath}: it has no backing file; only a qcow2 overlay can be committed`,
    );
  }
  if (options.base !== undefined && !sameFile(options.base, basePath)) {
    throw new ImageError(
      `Cannot commit ${overlayPath} into ${options.base}: only its backing file ${basePath} can be the base`,
    );
  }
  if (!options.keepOverlay && (info.snapshots?.length ?? 0) > 0) {
    throw new ImageError(
      `Cannot empty ${overlayPath} after the commit: it has internal snapshots; use -d to keep its data`,
    );
  }
  const base = openImage(basePath, { format: info.backingFormat });
  let top: Image;
  try {
    top = openOverlayOver(overlayPath, base);
  } catch (error) {
    base.close();
    throw error;
  }
  let result: CopyResult;
  try {
    result = commitImageData(top, base, { onProgress: options.onProgress });
  } finally {
    top.close(); // closes base too
  }
  if (!options.keepOverlay) emptyOverlay(overlayPath, info);
  return result;
}

/** Replaces the overlay by an empty one with the same header essentials. */
function emptyOverlay(path: string, info: ImageInfo): void {
  buildThenReplace(path, "empty", true, (temporary) =>
    createImage(temporary, {
      format: "qcow2",
      size: info.virtualSize,
      clusterSize: info.clusterSize,
      backingFile: info.backingFile,
      backingFormat: info.backingFormat,
    }));
}

function sameFile(a: string, b: string): boolean {
  try {
    return Deno.realPathSync(a) === Deno.realPathSync(b);
  } catch {
    return false;
  }
}
