/**
 * Describing and checking images without opening them for I/O: `imageInfo` (format,
 * sizes, backing chain, snapshots, flags; no lock taken, so it works on a running VM's
 * disk) and `checkImage` (qcow2 refcounts rebuilt and compared, as qemu-img check does).
 *
 * @module
 */

import { closeFd } from "../ffi/libc.ts";
import { pread } from "../ffi/fs.ts";
import { openImageFile } from "./image_file.ts";
import { parseHeader } from "./qcow2/format.ts";
import { checkQcow2, type Qcow2CheckResult } from "./qcow2/check.ts";
import { readSnapshotTable } from "./qcow2/snapshot_table.ts";
import {
  backingPath,
  type BackingPolicy,
  checkBackingAllowed,
  checkBackingFormat,
  checkSameBacking,
  enterChain,
  type ImageFormat,
  probeFormat,
} from "./image_probe.ts";

/** What `imageInfo` reports. */
export interface ImageInfo {
  path: string;
  format: ImageFormat;
  virtualSize: number;
  /** Bytes allocated on the host (st_blocks * 512). */
  actualSize: number;
  clusterSize?: number;
  /** As stored in the header. */
  backingFile?: string;
  backingFormat?: ImageFormat;
  /** Resolved absolute path. */
  fullBackingFilename?: string;
  dirty?: boolean;
  corrupt?: boolean;
  /** qcow2 internal snapshots. */
  snapshots?: { id: string; name: string; vmStateSize: number; date: string }[];
  /** The next image of the chain. */
  backing?: ImageInfo;
}

/** Options of `imageInfo`. */
export interface ImageInfoOptions {
  format?: ImageFormat;
  /** Where backing files may live (storage/image_probe.ts); default: anywhere. */
  backingPolicy?: BackingPolicy;
}

/** Describes the image at `path` and its backing chain, without locking it. */
export function imageInfo(path: string, options: ImageInfoOptions = {}): ImageInfo {
  return infoInChain(path, options.format, [], options.backingPolicy);
}

function infoInChain(
  path: string,
  format: ImageFormat | undefined,
  chain: string[],
  policy: BackingPolicy | undefined,
  approved?: { image: string; id: string },
): ImageInfo {
  const real = enterChain(path, chain);
  const kind = format ?? probeFormat(path);
  const file = openImageFile(path, { readOnly: true, lock: false });
  if (approved !== undefined) {
    try {
      checkSameBacking(approved.image, path, approved.id, file.id);
    } catch (error) {
      closeFd(file.fd);
      throw error;
    }
  }
  const actualSize = file.blocks * 512;
  if (kind === "raw") {
    closeFd(file.fd);
    return { path, format: "raw", virtualSize: file.size, actualSize };
  }
  const size = file.size;
  try {
    const bytes = readAt(file.fd, 0, Math.min(size, 2 * 1024 * 1024));
    const header = parseHeader(bytes, size, path);
    const dirty = (header.incompatible & 1) !== 0;
    const corrupt = (header.incompatible & 2) !== 0;
    const info: ImageInfo = {
      path,
      format: "qcow2",
      virtualSize: header.size,
      actualSize,
      clusterSize: 2 ** header.clusterBits,
      dirty,
      corrupt,
      snapshots: readSnapshotTable(
        (offset, length) => readAt(file.fd, offset, length),
        header,
        size,
        path,
      ).map((s) => ({
        id: s.id,
        name: s.name,
        vmStateSize: s.vmStateSize,
        date: new Date(s.dateSeconds * 1000).toISOString(),
      })),
    };
    if (header.backingFile !== undefined) {
      info.backingFile = header.backingFile;
      info.backingFormat = checkBackingFormat(header.backingFormat, path);
      info.fullBackingFilename = backingPath(path, header.backingFile);
      const id = policy ? checkBackingAllowed(path, info.fullBackingFilename, policy) : undefined;
      info.backing = infoInChain(
        info.fullBackingFilename,
        info.backingFormat,
        [...chain, real],
        policy,
        id === undefined ? undefined : { image: path, id },
      );
    }
    return info;
  } finally {
    closeFd(file.fd);
  }
}

function readAt(fd: number, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = pread(fd, bytes.subarray(done), offset + done);
    if (n <= 0) break;
    done += n;
  }
  return bytes;
}

/** What `checkImage` found (and fixed): the qcow2 figures, all zero for raw images. */
export interface CheckResult extends Qcow2CheckResult {
  format: ImageFormat;
}

/**
 * Checks the image at `path`: for qcow2, refcounts rebuilt from the metadata and
 * compared with the stored ones. `repair: "leaks"` releases leaked clusters; `"all"` also
 * raises refcounts that are too low and fixes COPIED flags.
 */
export function checkImage(path: string, options: { repair?: "leaks" | "all" } = {}): CheckResult {
  if (probeFormat(path) === "raw") {
    const file = openImageFile(path, { readOnly: true, lock: false });
    closeFd(file.fd);
    const size = file.size;
    return {
      format: "raw",
      errors: [],
      leaks: 0,
      leaksFixed: 0,
      errorsFixed: 0,
      allocatedClusters: 0,
      totalClusters: 0,
      fragmentedClusters: 0,
      imageEndOffset: size,
    };
  }
  return { format: "qcow2", ...checkQcow2(path, options.repair) };
}
