/**
 * Copying part of an image into a new one, block-wise (`qemu-img dd`): `skip` blocks are
 * skipped at the start of the input, which is read up to `count` blocks from its start.
 *
 * @module
 */

import { createImage, ImageError, type ImageFormat, openImage } from "./image_access.ts";
import type { CopyResult } from "./convert.ts";
import { buildThenReplace } from "./files.ts";
import {
  CHUNK_SIZE,
  forEachExtent,
  Progress,
  type ProgressCallback,
  readInto,
  writeNonZero,
} from "./scan.ts";

/** Options of `ddImage`, in dd's terms. */
export interface DdOptions {
  /** Output format (default raw). */
  format?: ImageFormat;
  sourceFormat?: ImageFormat;
  /** Bytes per block (default 512). */
  blockSize?: number;
  /** Read the input only up to this many blocks from its start. */
  count?: number;
  /** Blocks of the input to skip. */
  skip?: number;
  onProgress?: ProgressCallback;
}

/** Copies blocks `skip` to `count` of the image at `input` into a new image `output`. */
export function ddImage(input: string, output: string, options: DdOptions = {}): CopyResult {
  const blockSize = options.blockSize ?? 512;
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
    throw new ImageError(`Cannot copy ${input}: block size ${blockSize} is not a size`);
  }
  const source = openImage(input, { readOnly: true, format: options.sourceFormat });
  try {
    let end = source.size;
    if (options.count !== undefined) end = Math.min(end, options.count * blockSize);
    const start = (options.skip ?? 0) * blockSize;
    if (!Number.isSafeInteger(start) || start > end) {
      throw new ImageError(`Cannot skip to byte ${start} of ${input}: it reads only to ${end}`);
    }
    return buildThenReplace(output, "dd", true, (temporary) => {
      createImage(temporary, { format: options.format ?? "raw", size: end - start });
      const target = openImage(temporary, { format: options.format ?? "raw" });
      try {
        const buffer = new Uint8Array(CHUNK_SIZE);
        const progress = new Progress(end - start, options.onProgress);
        let bytesWritten = 0;
        forEachExtent(source, start, end, (extent) => {
          if (!extent.zero) {
            const data = readInto(source, extent.offset, extent.length, buffer);
            bytesWritten += writeNonZero(target, extent.offset - start, data);
          }
          progress.advance(extent.length);
        });
        progress.finish();
        target.flush();
        return { virtualSize: end - start, bytesWritten };
      } finally {
        target.close();
      }
    });
  } finally {
    source.close();
  }
}
