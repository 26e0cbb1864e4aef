/**
 * What every image operation needs to know before opening an image: its format (by the
 * qcow2 magic), where a backing file named in a header lives, and whether a chain loops
 * or is absurdly deep.
 *
 * @module
 */

import { isHandedFile } from "../common/handed_descriptors.ts";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { closeFd } from "../ffi/libc.ts";
import { pread } from "../ffi/fs.ts";
import { ImageError } from "./qcow2/errors.ts";
import { QCOW2_MAGIC } from "./qcow2/format.ts";
import { diskId, openImageFile } from "./image_file.ts";

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
  // A jailed VMM's chain is handed, not in its jail; the daemon resolved it (imageInfo
  // follows the real paths and refuses loops) before handing the files over.
  if (isHandedFile(path)) return path;
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

/** The format of the image at `path` by its magic: qcow2 or raw. Never blocks (FIFOs and
 *  devices other than block devices are refused) and takes no lock. */
export function probeFormat(path: string): ImageFormat {
  const file = openImageFile(path, { readOnly: true, lock: false });
  try {
    const magic = new Uint8Array(4);
    const n = pread(file.fd, magic, 0);
    return n === 4 && new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? "qcow2" : "raw";
  } finally {
    closeFd(file.fd);
  }
}

/**
 * Where the backing files of an image that entered through the daemon (an import, a
 * domain's disk) may live. `img` passes none: it keeps qemu-img's semantics.
 */
export interface BackingPolicy {
  /** A backing file's real path must lie under one of these directories. */
  allowedDirectories: readonly string[];
}

/**
 * Throws `ImageError` (code `forbidden`) unless the backing file `backing` of the image
 * `path` lies, symlinks resolved, under one of the policy's directories and is a regular
 * file (a block device as a backing file would hand a host disk to a guest). Returns the
 * approved file's disk id, for `checkSameBacking` once it is open.
 */
export function checkBackingAllowed(
  path: string,
  backing: string,
  policy: BackingPolicy,
): string {
  const real = realPath(backing);
  const inside = policy.allowedDirectories.some((directory) => {
    let root: string;
    try {
      root = Deno.realPathSync(directory);
    } catch {
      return false;
    }
    const rest = relative(root, real);
    return rest !== "" && rest !== ".." && !rest.startsWith("../") && !isAbsolute(rest);
  });
  if (!inside) {
    throw new BackingRefused(
      `Image ${path} has backing file ${backing}, outside the allowed directories (${
        policy.allowedDirectories.join(", ") || "none"
      }); flatten it with 'denovisor img convert' or move its backing file into the pool`,
    );
  }
  const info = Deno.statSync(real);
  if (!info.isFile) {
    throw new BackingRefused(
      `Image ${path} has backing file ${backing}, which is not a regular file; only image files may be backing files here`,
    );
  }
  return diskId(info.dev ?? 0, info.ino ?? 0);
}

/**
 * Throws unless the backing file opened as `openedId` is the one `checkBackingAllowed`
 * approved as `approvedId`: a symlink swapped between the check and the open is caught.
 */
export function checkSameBacking(
  path: string,
  backing: string,
  approvedId: string,
  openedId: string,
): void {
  if (approvedId !== openedId) {
    throw new BackingRefused(
      `Image ${path}: backing file ${backing} changed while it was being opened; try again`,
    );
  }
}

/** A backing file the policy refuses. */
export class BackingRefused extends ImageError {
  override readonly code = "forbidden" as const;
}
