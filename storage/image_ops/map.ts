/**
 * Where an image's bytes come from (`qemu-img map`): runs of the guest address space with
 * the chain layer that provides them and whether they read as zeroes.
 *
 * @module
 */

import { type Image, type ImageFormat, openImage } from "./image_access.ts";
import { STATUS_SPAN, storedInChain } from "./scan.ts";

/** One run, with qemu-img map's JSON fields (the host offset is not reported). */
export interface MapEntry {
  start: number;
  length: number;
  /** Chain layer providing the run: 0 = the image, 1 = its backing... */
  depth: number;
  /** Some layer of the chain stores the run (as data or as zeroes). */
  present: boolean;
  zero: boolean;
  data: boolean;
  /** Path of the layer at `depth`. */
  file: string;
}

/** Maps the image at `path` (read-only). */
export function mapImage(path: string, options: { format?: ImageFormat } = {}): MapEntry[] {
  const image = openImage(path, { readOnly: true, format: options.format });
  try {
    return mapOpenImage(image);
  } finally {
    image.close();
  }
}

/** Maps an open image, merging neighbouring runs of the same status. */
export function mapOpenImage(image: Image): MapEntry[] {
  const chain: Image[] = [];
  for (let layer: Image | undefined = image; layer; layer = layer.backing) chain.push(layer);
  const bottom = chain.length - 1;
  const entries: MapEntry[] = [];
  for (let offset = 0; offset < image.size;) {
    const wanted = Math.min(STATUS_SPAN, image.size - offset);
    const extent = image.blockStatus(offset, wanted);
    const { present, length } = storedInChain(image, {
      ...extent,
      offset,
      length: Math.max(1, Math.min(extent.length, wanted)),
    });
    const depth = present ? extent.depth : bottom;
    const entry: MapEntry = {
      start: offset,
      length,
      depth,
      present,
      zero: extent.zero,
      data: present && !extent.zero,
      file: chain[depth].path,
    };
    const last = entries.at(-1);
    if (
      last && last.depth === entry.depth && last.present === entry.present &&
      last.zero === entry.zero && last.data === entry.data &&
      last.start + last.length === entry.start
    ) {
      last.length += entry.length;
    } else {
      entries.push(entry);
    }
    offset += length;
  }
  return entries;
}
