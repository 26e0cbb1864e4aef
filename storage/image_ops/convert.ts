/**
 * Copying an image's contents into a new image of any format (`qemu-img convert`).
 * Only data is copied: ranges the source reports as zero, and 4 KiB granules that turn
 * out to hold only zeroes, are skipped, so the output is as sparse as it can be.
 *
 * @module
 */

import type { BackingPolicy } from "../image_probe.ts";
import {
  createImage,
  type Image,
  ImageError,
  type ImageFormat,
  openImage,
} from "./image_access.ts";
import {
  CHUNK_SIZE,
  forEachExtent,
  Progress,
  type ProgressCallback,
  readInto,
  storedInChain,
  writeNonZero,
  ZERO_GRANULE,
} from "./scan.ts";
import { buildThenReplace } from "./files.ts";

/** Options of `convertImage`. */
export interface ConvertOptions {
  /** Format of the new image. */
  format: ImageFormat;
  /** Format of the source; probed when omitted. */
  sourceFormat?: ImageFormat;
  /** Where the source's backing files may live (images entering through the daemon). */
  sourceBackingPolicy?: BackingPolicy;
  /** qcow2 cluster size of the new image. */
  clusterSize?: number;
  /**
   * Make the new image an overlay of this file (`qemu-img convert -B`): only data stored
   * in the source image itself is copied, the rest is left to the backing file, which
   * must hold what the source's backing chain holds.
   */
  backingFile?: string;
  backingFormat?: ImageFormat;
  preallocation?: "off" | "metadata" | "full";
  /**
   * Zero-detection granule (qemu-img convert -S): aligned blocks of this many zero bytes
   * are not written. Default 4096; 0 writes every byte, for a fully allocated output.
   */
  sparseSize?: number;
  /**
   * Write into the existing image `dst` (qemu-img convert -n), e.g. a block device, instead
   * of creating one; it must be at least as large as the source. Ranges that read as
   * zeroes in the source are zeroed in `dst` unless `targetIsZero`.
   */
  existingTarget?: boolean;
  /** With `existingTarget`: `dst` already reads as zeroes (--target-is-zero). */
  targetIsZero?: boolean;
  /** Replace `dst` if it exists (as qemu-img does). Default: refuse. */
  overwrite?: boolean;
  onProgress?: ProgressCallback;
}

/** What a copy did. */
export interface CopyResult {
  /** Guest bytes examined (the virtual size). */
  virtualSize: number;
  /** Bytes actually written to the target. */
  bytesWritten: number;
}

/**
 * Converts the image at `src` into a new image at `dst`. The new image is built under a
 * temporary name beside `dst` and renamed into place when complete and flushed, so an
 * interrupted conversion never leaves a half-written `dst`.
 */
export function convertImage(src: string, dst: string, options: ConvertOptions): CopyResult {
  refuseSameFile(src, dst);
  const source = openImage(src, {
    readOnly: true,
    format: options.sourceFormat,
    backingPolicy: options.sourceBackingPolicy,
  });
  try {
    if (options.existingTarget) return convertInto(source, dst, options);
    return buildThenReplace(dst, "convert to", options.overwrite ?? false, (temporary) => {
      createImage(temporary, {
        format: options.format,
        size: source.size,
        clusterSize: options.clusterSize,
        // Relative backing paths resolve against the image's directory, which the
        // temporary file shares with dst.
        backingFile: options.backingFile,
        backingFormat: options.backingFormat,
        preallocation: options.preallocation,
      });
      const target = openImage(temporary, { format: options.format });
      try {
        const result = copyImageData(source, target, {
          topOnly: options.backingFile !== undefined,
          sparseSize: options.sparseSize,
          onProgress: options.onProgress,
        });
        target.flush();
        return result;
      } finally {
        target.close();
      }
    });
  } finally {
    source.close();
  }
}

/** convert -n: copies into an existing image, zeroing what reads as zeroes. */
function convertInto(source: Image, dst: string, options: ConvertOptions): CopyResult {
  if (options.backingFile !== undefined) {
    throw new ImageError(`Cannot convert into the existing image ${dst} with a backing file`);
  }
  const target = openImage(dst, { format: options.format });
  try {
    if (target.format !== options.format) {
      throw new ImageError(
        `Cannot convert into ${dst}: it is ${target.format}, not ${options.format}`,
      );
    }
    const result = copyImageData(source, target, {
      sparseSize: options.sparseSize,
      targetIsZero: options.targetIsZero ?? false,
      onProgress: options.onProgress,
    });
    target.flush();
    return result;
  } finally {
    target.close();
  }
}

/** Options of `copyImageData`. */
export interface CopyOptions {
  /**
   * Copy only what is stored in `source` itself (its allocated extents, zero ones as
   * explicit zeroes), for a target whose backing file provides the rest.
   */
  topOnly?: boolean;
  /** See `ConvertOptions.sparseSize`. */
  sparseSize?: number;
  /**
   * The target reads as zeroes before the copy (default true: a fresh image); when false,
   * zero ranges of the source are zeroed in the target.
   */
  targetIsZero?: boolean;
  onProgress?: ProgressCallback;
}

/**
 * Copies the contents of `source` into `target`, which must be at least as large and
 * read as zeroes (a freshly created image) unless `targetIsZero` is false, or, with
 * `topOnly`, read as `source`'s backing chain does.
 */
export function copyImageData(source: Image, target: Image, options: CopyOptions = {}): CopyResult {
  if (target.size < source.size) {
    throw new ImageError(
      `Cannot copy ${source.path} (${source.size} bytes) into ${target.path}: it has only ${target.size} bytes`,
    );
  }
  const sparseSize = options.sparseSize ?? ZERO_GRANULE;
  if (!Number.isSafeInteger(sparseSize) || sparseSize < 0) {
    throw new ImageError(`Cannot copy ${source.path}: sparse size ${sparseSize} is not a size`);
  }
  const buffer = new Uint8Array(CHUNK_SIZE);
  const progress = new Progress(source.size, options.onProgress);
  const zeroTarget = options.targetIsZero === false
    ? (at: number, length: number) => target.writeZeroes(at, length, { unmap: true })
    : undefined;
  let bytesWritten = 0;
  forEachExtent(source, 0, source.size, (extent) => {
    const { offset, length } = extent;
    if (options.topOnly) {
      // Stored in the source itself: its own clusters, or any byte of a raw file (a hole
      // is a stored zero there), which must not fall through to the target's backing.
      const own = extent.depth === 0 && storedInChain(source, extent).present;
      if (own && extent.zero) {
        target.writeZeroes(offset, length);
      } else if (own) {
        target.write(offset, [readInto(source, offset, length, buffer)]);
        bytesWritten += length;
      }
    } else if (sparseSize === 0) {
      // Fully allocated output: zero runs are written as zero bytes too, a chunk at a time.
      for (let at = offset; at < offset + length; at += CHUNK_SIZE) {
        const piece = Math.min(CHUNK_SIZE, offset + length - at);
        const data = extent.zero
          ? buffer.fill(0, 0, piece).subarray(0, piece)
          : readInto(source, at, piece, buffer);
        target.write(at, [data]);
        bytesWritten += piece;
      }
    } else if (!extent.zero) {
      const data = readInto(source, offset, length, buffer);
      bytesWritten += writeNonZero(target, offset, data, sparseSize, zeroTarget);
    } else {
      zeroTarget?.(offset, length);
    }
    progress.advance(length);
  });
  progress.finish();
  return { virtualSize: source.size, bytesWritten };
}

function refuseSameFile(src: string, dst: string): void {
  let same = false;
  try {
    same = Deno.realPathSync(src) === Deno.realPathSync(dst);
  } catch { /* dst does not exist yet */ }
  if (same) throw new ImageError(`Cannot convert ${src} into itself; name another output file`);
}
