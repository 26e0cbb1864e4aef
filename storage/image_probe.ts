/**
 * What every image operation needs to know before opening an image: its format (by the
 * qcow2 magic), where a backing file named in a header lives, and whether a chain loops
 * or is absurdly deep.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import { ImageError } from "./qcow2/errors.ts";
import { QCOW2_MAGIC } from "./qcow2/format.ts";

/** The image formats Denovisor reads and writes. */
export type ImageFormat = "raw" | "qcow2";

/** Backing chains deeper than this are refused as absurd. */
const MAX_CHAIN_DEPTH = 256;

/**
 * Adds the image at `path` to a backing chain walked from its top (`chain`, real paths);
 * throws `ImageError` when it is already in the chain or the chain is too deep. Returns
 * the image's real path.
 */
export function enterChain(path: string, chain: readonly string[]): string {
  const real = realPath(path);
  if (chain.includes(real)) {
    throw new ImageError(
      `Image ${chain[0]} has a backing chain that loops: ${[...chain, real].join(" -> ")}`,
    );
  }
  if (chain.length >= MAX_CHAIN_DEPTH) {
    throw new ImageError(`Image ${chain[0]} has a backing chain deeper than ${MAX_CHAIN_DEPTH}`);
  }
  return real;
}

/** Where the backing file `name` of the image at `path` is (relative names: beside it). */
export function backingPath(path: string, name: string): string {
  return isAbsolute(name) ? name : resolve(dirname(path), name);
}

function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(`Cannot open image ${path}: no such file`);
    }
    throw error;
  }
}

/** A backing format named in a header, checked: raw, qcow2 or none. */
export function checkBackingFormat(
  format: string | undefined,
  path: string,
): ImageFormat | undefined {
  if (format === undefined || format === "raw" || format === "qcow2") return format;
  throw new ImageError(`Image ${path} names backing format "${format}"; only raw and qcow2 work`);
}

/** The format of the image at `path` by its magic: qcow2 or raw. */
export function probeFormat(path: string): ImageFormat {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(`Cannot open image ${path}: no such file`);
    }
    throw new ImageError(`Cannot open image ${path}: ${(error as Error).message}`);
  }
  try {
    const magic = new Uint8Array(4);
    const n = file.readSync(magic);
    return n === 4 && new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? "qcow2" : "raw";
  } finally {
    file.close();
  }
}
