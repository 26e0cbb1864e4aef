/**
 * The pool manager's one seam to the image layer (storage/image.ts, storage/image_ops/):
 * create, inspect, convert, commit and resize volume images. Block devices (partitions of
 * a block pool) are raw and described here directly.
 *
 * @module
 */

import {
  type BackingPolicy,
  createImage,
  ImageError,
  type ImageInfo,
  imageInfo,
  probeFormat,
} from "../image.ts";
import { runOffThread } from "../image_ops/off_thread.ts";
import { resizeImage } from "../image_ops/resize.ts";
import { DiskError } from "../disk.ts";
import { deviceSize } from "./gpt.ts";
import { PoolError } from "./pool_error.ts";
import type { ProgressCallback } from "./file_clone.ts";

export { ImageError, probeFormat };
export type ImageFormat = "raw" | "qcow2";
export type Preallocation = "off" | "metadata" | "full";

/** What the pool manager needs to know about one image. */
export interface VolumeImageInfo {
  format: ImageFormat;
  virtualSize: number;
  /** Bytes allocated on the host for this file alone. */
  actualSize: number;
  /** Absolute paths of the backing chain, nearest first. */
  backingChain: string[];
}

/** Options of `createVolumeImage`. */
export interface CreateOptions {
  format: ImageFormat;
  size: number;
  preallocation?: Preallocation;
  /** qcow2 only: an absolute path. */
  backingFile?: string;
  backingFormat?: ImageFormat;
}

/** Creates a new image at `path`; refuses to overwrite an existing file. */
export function createVolumeImage(path: string, options: CreateOptions): void {
  createImage(path, {
    format: options.format,
    size: options.size,
    preallocation: options.preallocation,
    backingFile: options.backingFile,
    backingFormat: options.backingFormat,
  });
}

/**
 * Format, sizes and backing chain of the image (or block device) at `path`; with a
 * policy, backing files outside its directories are refused (`forbidden`).
 */
export function volumeImageInfo(path: string, backingPolicy?: BackingPolicy): VolumeImageInfo {
  const stat = Deno.statSync(path);
  if (stat.isBlockDevice && probeFormat(path) === "raw") {
    const size = deviceSize(path);
    return { format: "raw", virtualSize: size, actualSize: size, backingChain: [] };
  }
  const info = imageInfo(path, { backingPolicy });
  const backingChain: string[] = [];
  for (let link: ImageInfo | undefined = info; link?.fullBackingFilename; link = link.backing) {
    backingChain.push(link.fullBackingFilename);
  }
  return {
    format: info.format,
    virtualSize: info.virtualSize,
    actualSize: info.actualSize,
    backingChain,
  };
}

/**
 * Writes the full contents of `source` (its chain flattened) as a new image `target`, on a
 * Worker: the daemon keeps serving while it copies.
 */
export async function convertVolumeImage(
  source: string,
  target: string,
  options: { format: ImageFormat; onProgress?: ProgressCallback; backingPolicy?: BackingPolicy },
): Promise<void> {
  const convert = { format: options.format, sourceBackingPolicy: options.backingPolicy };
  await runOffThread({ op: "convert", source, target, options: convert }, options.onProgress);
}

/** Merges the qcow2 overlay `overlay` into its backing file, then empties it (on a Worker). */
export async function commitVolumeImage(overlay: string): Promise<void> {
  await runOffThread({ op: "commit", overlay, options: {} });
}

/** Changes the virtual size; shrinking needs `shrink`. */
export function resizeVolumeImage(path: string, size: number, options: { shrink?: boolean } = {}) {
  try {
    resizeImage(path, size, { shrink: options.shrink });
  } catch (error) {
    if (error instanceof DiskError && /Cannot shrink/.test(error.message)) {
      throw new PoolError(
        "invalid",
        `${error.message}; to shrink, convert the volume to raw, resize it, and convert it back`,
      );
    }
    throw error;
  }
}
