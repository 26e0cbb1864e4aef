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
  openChainOver,
  openImage,
} from "./image_access.ts";
import type { CopyResult } from "./convert.ts";
import { buildThenReplace } from "./files.ts";
import {
  CHUNK_SIZE,
  Progress,
  type ProgressCallback,
  readInto,
  STATUS_SPAN,
  storedInChain,
} from "./scan.ts";

/**
 * Writes what `top` and the images between it and `base` store into `base` (writable):
 * data as data, zero extents as zeroes. `base` is the image at `baseDepth` in `top`'s
 * chain (1, its backing file, by default). `base` grows to `top`'s size first if it is
 * smaller, as qemu-img does.
 */
export function commitImageData(
  top: Image,
  base: Image,
  options: { onProgress?: ProgressCallback; baseDepth?: number } = {},
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
  const baseDepth = options.baseDepth ?? 1;
  const buffer = new Uint8Array(CHUNK_SIZE);
  const progress = new Progress(top.size, options.onProgress);
  let bytesWritten = 0;
  for (let offset = 0; offset < top.size;) {
    const extent = top.blockStatus(offset, Math.min(STATUS_SPAN, top.size - offset));
    let length = Math.max(1, extent.length);
    if (!extent.zero) length = Math.min(length, CHUNK_SIZE);
    if (extent.depth < baseDepth) {
      // Stored above the base? (Unallocated all the way down also names a depth.)
      const stored = storedInChain(top, { ...extent, offset, length });
      length = stored.length;
      if (stored.present && extent.zero) {
        base.writeZeroes(offset, length);
      } else if (stored.present) {
        base.write(offset, [readInto(top, offset, length, buffer)]);
        bytesWritten += length;
      }
    }
    progress.advance(length);
    offset += length;
  }
  base.flush();
  progress.finish();
  return { virtualSize: top.size, bytesWritten };
}

/** Options of `commitImage`. */
export interface CommitOptions {
  /** Format of the overlay; probed when omitted (it must be qcow2). */
  format?: ImageFormat;
  /** The image of the chain to commit into; default the overlay's backing file. */
  base?: string;
  /** Keep the overlay's data instead of emptying it (qemu-img commit -d). */
  keepOverlay?: boolean;
  onProgress?: ProgressCallback;
}

/**
 * Commits the overlay at `overlayPath` into its backing image (`qemu-img commit`), or
 * into a deeper image of its chain named by `base`; then the images between are stale
 * and, as with qemu-img, the overlay is kept as it is (-b implies -d).
 */
export function commitImage(overlayPath: string, options: CommitOptions = {}): CopyResult {
  const info = imageInfo(overlayPath, { format: options.format });
  if (info.format !== "qcow2" || info.fullBackingFilename === undefined) {
    throw new ImageError(
      `Cannot commit ${overlayPath}: it has no backing file; only a qcow2 overlay can be committed`,
    );
  }
  const chain: ImageInfo[] = [];
  for (let at: ImageInfo | undefined = info; at; at = at.backing) chain.push(at);
  const baseDepth = options.base === undefined
    ? 1
    : chain.findIndex((image, depth) => depth > 0 && sameFile(image.path, options.base!));
  if (baseDepth < 1) {
    throw new ImageError(
      `Cannot commit ${overlayPath} into ${options.base}: it is not in the backing chain (${
        chain.slice(1).map((image) => image.path).join(" -> ")
      })`,
    );
  }
  const keepOverlay = options.keepOverlay || baseDepth > 1;
  if (!keepOverlay && (info.snapshots?.length ?? 0) > 0) {
    throw new ImageError(
      `Cannot empty ${overlayPath} after the commit: it has internal snapshots; use -d to keep its data`,
    );
  }
  const baseInfo = chain[baseDepth];
  let base: Image;
  try {
    base = openImage(baseInfo.path, { format: baseInfo.format });
  } catch (error) {
    if (error instanceof Error) {
      error.message = `Cannot commit ${overlayPath} into ${baseInfo.path}: ${error.message}`;
    }
    throw error;
  }
  let top: Image;
  try {
    top = openChainOver(overlayPath, baseInfo.path, base);
  } catch (error) {
    base.close();
    throw error;
  }
  let result: CopyResult;
  try {
    result = commitImageData(top, base, { onProgress: options.onProgress, baseDepth });
  } finally {
    top.close(); // closes base too
  }
  if (!keepOverlay) emptyOverlay(overlayPath, info);
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
