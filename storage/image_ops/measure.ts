/**
 * How many bytes a new image needs on the host (`qemu-img measure`): for a given virtual
 * size, or for converting an existing image, with qemu's formulas so the figures match
 * and provisioning scripts (OpenStack, virt-v2v) keep working.
 *
 * @module
 */

import { ImageError, type ImageFormat, openImage } from "./image_access.ts";
import { STATUS_SPAN, storedInChain } from "./scan.ts";

/** What to measure: a new image of `size` bytes, or the conversion of `source`. */
export interface MeasureOptions {
  /** Output format. */
  format: ImageFormat;
  size?: number;
  source?: string;
  sourceFormat?: ImageFormat;
  /** qcow2 cluster size (default 64 KiB). */
  clusterSize?: number;
  /** An output with a backing file counts every cluster as needed (qemu's worst case). */
  backingFile?: string;
  preallocation?: "off" | "metadata" | "full";
}

/** The measure, in qemu-img's terms. */
export interface MeasureResult {
  /** Bytes the output needs as it would be written. */
  required: number;
  /** Bytes it would take with every cluster allocated. */
  fullyAllocated: number;
  /** Persistent dirty bitmaps (qcow2 to qcow2 only; Denovisor writes none). */
  bitmaps?: number;
}

/** Measures the image a conversion (or a create of `size` bytes) would make. */
export function measureImage(options: MeasureOptions): MeasureResult {
  if ((options.size === undefined) === (options.source === undefined)) {
    throw new ImageError("Cannot measure: give either a size or a source image, not both");
  }
  if (options.source === undefined) {
    return measureNew(options, options.size!, 0, false);
  }
  const image = openImage(options.source, { readOnly: true, format: options.sourceFormat });
  try {
    const clusterSize = options.clusterSize ?? 65536;
    let data = 0;
    if (options.format === "qcow2" && options.backingFile === undefined) {
      // Clusters holding data anywhere in the chain, each counted once (qemu's loop).
      for (let offset = 0; offset < image.size;) {
        const extent = image.blockStatus(offset, Math.min(STATUS_SPAN, image.size - offset));
        let length = Math.max(1, extent.length);
        if (!extent.zero && storedInChain(image, { ...extent, offset, length }).present) {
          length = roundUp(offset + length, clusterSize) - offset;
          data += (offset % clusterSize) + length;
        }
        offset += length;
      }
    }
    return measureNew(options, image.size, data, image.format === "qcow2");
  } finally {
    image.close();
  }
}

function measureNew(
  options: MeasureOptions,
  size: number,
  data: number,
  sourceIsQcow2: boolean,
): MeasureResult {
  if (options.format === "raw") {
    const bytes = options.source === undefined ? roundUp(size, 512) : size;
    return { required: bytes, fullyAllocated: bytes };
  }
  const clusterSize = options.clusterSize ?? 65536;
  if (!Number.isInteger(Math.log2(clusterSize)) || clusterSize < 512 || clusterSize > 2 ** 21) {
    throw new ImageError(
      `Cannot measure: cluster size ${clusterSize} is not a power of two from 512 to 2 MiB`,
    );
  }
  const virtual = roundUp(size, clusterSize);
  let needed = options.source !== undefined && options.backingFile !== undefined ? virtual : data;
  if (options.preallocation === "full") needed = virtual;
  const fullyAllocated = preallocatedSize(virtual, clusterSize, 4);
  const result: MeasureResult = { required: fullyAllocated - virtual + needed, fullyAllocated };
  if (sourceIsQcow2) result.bitmaps = 0;
  return result;
}

/** qcow2_calc_prealloc_size: header, L2 and L1 tables, refcounts, and every data cluster. */
function preallocatedSize(total: number, clusterSize: number, refcountOrder: number): number {
  const aligned = roundUp(total, clusterSize);
  let meta = clusterSize; // the header cluster
  const l2Entries = roundUp(aligned / clusterSize, clusterSize / 8);
  meta += l2Entries * 8;
  const l1Entries = roundUp((l2Entries * 8) / clusterSize, clusterSize / 8);
  meta += l1Entries * 8;
  meta += refcountMetadataSize((meta + aligned) / clusterSize, clusterSize, refcountOrder);
  return meta + aligned;
}

/**
 * The refcount blocks and table clusters needed to count `clusters` clusters and
 * themselves: the fixed point qemu's qcow2_refcount_metadata_size finds.
 */
function refcountMetadataSize(clusters: number, clusterSize: number, order: number): number {
  const blocksPerTableCluster = clusterSize / 8;
  const refcountsPerBlock = (clusterSize * 8) / 2 ** order;
  let table = 0;
  let blocks = 0;
  let n = 0;
  let last: number;
  do {
    last = n;
    blocks = Math.ceil((clusters + table + blocks) / refcountsPerBlock);
    table = Math.ceil(blocks / blocksPerTableCluster);
    n = clusters + blocks + table;
  } while (n !== last);
  return (blocks + table) * clusterSize;
}

function roundUp(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}
