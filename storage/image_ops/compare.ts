/**
 * Comparing the contents of two images (`qemu-img compare`). Images of different sizes
 * compare equal when the larger one holds only zeroes past the smaller one's end, unless
 * the comparison is strict; strict mode also treats a range whose block status differs
 * (stored in the chain or not, zero or data) as a difference, as qemu-img compare -s does.
 *
 * @module
 */

import { type Image, type ImageFormat, openImage } from "./image_access.ts";
import {
  CHUNK_SIZE,
  firstDifference,
  firstNonZero,
  forEachExtent,
  Progress,
  type ProgressCallback,
  readInto,
  SECTOR_SIZE,
  STATUS_SPAN,
  storedInChain,
} from "./scan.ts";

/** Options of `compareImages`. */
export interface CompareOptions {
  /** Different sizes, or a different block status of the same range, make images differ. */
  strict?: boolean;
  /** Formats of the two images; probed when omitted. */
  formats?: [ImageFormat | undefined, ImageFormat | undefined];
  onProgress?: ProgressCallback;
}

/** Why two images differ. */
export type DifferenceKind = "content" | "size" | "allocation";

/** The outcome of a comparison. */
export interface CompareResult {
  equal: boolean;
  /**
   * Offset of the first 512-byte sector that differs (qemu-img's "Content mismatch at
   * offset N"); for an allocation difference, the offset where the status differs.
   */
  firstDifference?: number;
  /** What differs, when something does. */
  difference?: DifferenceKind;
  /** The virtual sizes differ (a warning when not strict). */
  sizeMismatch: boolean;
}

/** Compares the images at paths `a` and `b`, opened read-only. */
export function compareImages(a: string, b: string, options: CompareOptions = {}): CompareResult {
  const first = openImage(a, { readOnly: true, format: options.formats?.[0] });
  try {
    const second = openImage(b, { readOnly: true, format: options.formats?.[1] });
    try {
      return compareImageContents(first, second, options);
    } finally {
      second.close();
    }
  } finally {
    first.close();
  }
}

/** Compares two open images. */
export function compareImageContents(
  a: Image,
  b: Image,
  options: Pick<CompareOptions, "strict" | "onProgress"> = {},
): CompareResult {
  const sizeMismatch = a.size !== b.size;
  if (sizeMismatch && options.strict) {
    return { equal: false, difference: "size", sizeMismatch };
  }
  const common = Math.min(a.size, b.size);
  const progress = new Progress(Math.max(a.size, b.size), options.onProgress);
  const bufferA = new Uint8Array(CHUNK_SIZE);
  const bufferB = new Uint8Array(CHUNK_SIZE);
  let offset = 0;
  while (offset < common) {
    const wanted = Math.min(STATUS_SPAN, common - offset);
    const statusA = a.blockStatus(offset, wanted);
    const statusB = b.blockStatus(offset, Math.max(1, Math.min(statusA.length, wanted)));
    let length = Math.max(1, Math.min(statusA.length, statusB.length, wanted));
    if (!(statusA.zero && statusB.zero)) length = Math.min(length, CHUNK_SIZE);
    if (options.strict) {
      // qemu-img compare -s: the block status (stored somewhere in the chain, zero or
      // data) must match too, not only the bytes.
      const storedA = storedInChain(a, { ...statusA, offset, length });
      const storedB = storedInChain(b, { ...statusB, offset, length });
      if (storedA.present !== storedB.present || statusA.zero !== statusB.zero) {
        return { equal: false, firstDifference: offset, difference: "allocation", sizeMismatch };
      }
      length = Math.min(length, storedA.length, storedB.length);
    }
    let at = -1;
    if (statusA.zero && statusB.zero) {
      // both read as zeroes: nothing to read
    } else if (statusA.zero) {
      at = firstNonZero(readInto(b, offset, length, bufferB));
    } else if (statusB.zero) {
      at = firstNonZero(readInto(a, offset, length, bufferA));
    } else {
      at = firstDifference(
        readInto(a, offset, length, bufferA),
        readInto(b, offset, length, bufferB),
      );
    }
    if (at >= 0) return contentMismatch(offset + at, sizeMismatch);
    progress.advance(length);
    offset += length;
  }
  const larger = a.size > b.size ? a : b;
  let mismatch = -1;
  forEachExtent(larger, common, larger.size, (extent) => {
    if (!extent.zero) {
      const at = firstNonZero(readInto(larger, extent.offset, extent.length, bufferA));
      if (at >= 0) {
        mismatch = extent.offset + at;
        return false;
      }
    }
    progress.advance(extent.length);
    return true;
  });
  if (mismatch >= 0) return contentMismatch(mismatch, sizeMismatch);
  progress.finish();
  return { equal: true, sizeMismatch };
}

function contentMismatch(byte: number, sizeMismatch: boolean): CompareResult {
  const firstDifference = byte - (byte % SECTOR_SIZE);
  return { equal: false, firstDifference, difference: "content", sizeMismatch };
}
