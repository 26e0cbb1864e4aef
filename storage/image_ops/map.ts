/**
 * Where an image's bytes come from (`qemu-img map`): runs of the guest address space with
 * the chain layer that provides them, whether they read as zeroes, and where in that
 * layer's file they are stored.
 *
 * @module
 */

import { ClusterKind } from "../qcow2/cluster_map.ts";
import { Qcow2Disk } from "../qcow2/qcow2_disk.ts";
import { type Image, type ImageFormat, openImage } from "./image_access.ts";
import { STATUS_SPAN, storedInChain } from "./scan.ts";

/** One run, with qemu-img map's JSON fields. */
export interface MapEntry {
  start: number;
  length: number;
  /** Chain layer providing the run: 0 = the image, 1 = its backing... */
  depth: number;
  /** Some layer of the chain stores the run (as data or as zeroes). */
  present: boolean;
  zero: boolean;
  data: boolean;
  /** Where the run starts in the file of the layer at `depth`, when it is stored plainly. */
  offset?: number;
  /** Path of the layer at `depth`. */
  file: string;
}

/** Options of `mapImage`. */
export interface MapOptions {
  format?: ImageFormat;
  /** First guest byte to map (default 0). */
  start?: number;
  /** At most this many bytes (default: to the end). */
  length?: number;
}

/** Maps the image at `path` (read-only). */
export function mapImage(path: string, options: MapOptions = {}): MapEntry[] {
  const image = openImage(path, { readOnly: true, format: options.format });
  try {
    return mapOpenImage(image, options.start, options.length);
  } finally {
    image.close();
  }
}

/**
 * Maps an open image. Neighbouring runs of one status merge, as in qemu-img map, when they
 * are stored contiguously in the same file (or neither is stored plainly).
 */
export function mapOpenImage(image: Image, start = 0, length?: number): MapEntry[] {
  const end = Math.min(image.size, length === undefined ? image.size : start + length);
  const chain: Image[] = [];
  for (let layer: Image | undefined = image; layer; layer = layer.backing) chain.push(layer);
  const bottom = chain.length - 1;
  const entries: MapEntry[] = [];
  const add = (entry: MapEntry) => {
    const last = entries.at(-1);
    if (
      last && last.depth === entry.depth && last.present === entry.present &&
      last.zero === entry.zero && last.data === entry.data &&
      last.start + last.length === entry.start &&
      (last.offset === undefined
        ? entry.offset === undefined
        : entry.offset === last.offset + last.length)
    ) {
      last.length += entry.length;
    } else {
      entries.push(entry);
    }
  };
  for (let offset = Math.max(0, start); offset < end;) {
    const wanted = Math.min(STATUS_SPAN, end - offset);
    const extent = image.blockStatus(offset, wanted);
    const { present, length } = storedInChain(image, {
      ...extent,
      offset,
      length: Math.max(1, Math.min(extent.length, wanted)),
    });
    const depth = present ? extent.depth : bottom;
    const status = { depth, present, zero: extent.zero, data: present && !extent.zero };
    const file = chain[depth].path;
    if (present) {
      for (const run of hostRuns(chain[depth], offset, length)) add({ ...run, ...status, file });
    } else {
      add({ start: offset, length, ...status, file });
    }
    offset += length;
  }
  return entries;
}

/**
 * Splits `[start, start + length)` of `layer` into runs stored contiguously in its file,
 * each with its file offset (none for compressed clusters and zero clusters without a
 * host cluster).
 */
function hostRuns(
  layer: Image,
  start: number,
  length: number,
): { start: number; length: number; offset?: number }[] {
  if (layer.format === "raw") return [{ start, length, offset: start }];
  if (!(layer instanceof Qcow2Disk)) return [{ start, length }];
  const size = layer.clusterSize;
  const runs: { start: number; length: number; offset?: number }[] = [];
  for (let at = start; at < start + length;) {
    const cluster = Math.floor(at / size);
    const piece = Math.min(start + length, (cluster + 1) * size) - at;
    const kind = layer.clusterMap.classify(cluster);
    const host = layer.clusterMap.host;
    const stored = (kind === ClusterKind.Data || kind === ClusterKind.Zero) && host !== 0;
    const offset = stored ? host + (at - cluster * size) : undefined;
    const last = runs.at(-1);
    if (
      last &&
      (last.offset === undefined ? offset === undefined : offset === last.offset + last.length)
    ) {
      last.length += piece;
    } else {
      runs.push({ start: at, length: piece, offset });
    }
    at += piece;
  }
  return runs;
}
