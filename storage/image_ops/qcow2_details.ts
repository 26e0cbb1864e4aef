/**
 * The qcow2 header facts qemu-img info shows under "Format specific information" (compat
 * level, compression type, lazy refcounts, refcount width, corrupt and extended-L2 bits),
 * read from the header without opening or locking the image.
 *
 * @module
 */

import {
  COMPAT_LAZY_REFCOUNTS,
  INCOMPAT_COMPRESSION_TYPE,
  INCOMPAT_CORRUPT,
  INCOMPAT_EXTENDED_L2,
  parseHeader,
} from "../qcow2/format.ts";
import { closeFd } from "../../ffi/libc.ts";
import { pread } from "../../ffi/fs.ts";
import { openImageFile } from "../image_file.ts";
import { ClusterKind } from "../qcow2/cluster_map.ts";
import { readSnapshotTable } from "../qcow2/snapshot_table.ts";
import { Qcow2Disk } from "../qcow2/qcow2_disk.ts";
import { openOverlayTop } from "./image_access.ts";
import { STATUS_SPAN } from "./scan.ts";

/** qemu-img info's `format-specific.data` for a qcow2 image, in qemu's key order. */
export interface Qcow2Details {
  compat: "0.10" | "1.1";
  "compression-type": "zlib" | "zstd";
  "lazy-refcounts"?: boolean;
  "refcount-bits": number;
  corrupt?: boolean;
  "extended-l2"?: boolean;
}

/** Reads the format-specific details of the qcow2 image at `path`. */
export function qcow2Details(path: string): Qcow2Details {
  const { bytes, size } = readHead(path);
  const header = parseHeader(bytes, size, path);
  const zstd = (header.incompatible & INCOMPAT_COMPRESSION_TYPE) !== 0 &&
    header.headerLength > 104 && bytes[104] === 1;
  const details: Qcow2Details = {
    compat: header.version === 3 ? "1.1" : "0.10",
    "compression-type": zstd ? "zstd" : "zlib",
    "refcount-bits": 2 ** header.refcountOrder,
  };
  if (header.version === 3) {
    return {
      compat: details.compat,
      "compression-type": details["compression-type"],
      "lazy-refcounts": (header.compatible & COMPAT_LAZY_REFCOUNTS) !== 0,
      "refcount-bits": details["refcount-bits"],
      corrupt: (header.incompatible & INCOMPAT_CORRUPT) !== 0,
      "extended-l2": (header.incompatible & INCOMPAT_EXTENDED_L2) !== 0,
    };
  }
  return details;
}

/**
 * How many clusters of the qcow2 image at `path` hold compressed data (qemu-img check's
 * "compressed clusters"). Only the ranges the image stores data for are examined, so a
 * sparse image is counted quickly.
 */
export function countCompressedClusters(path: string): number {
  const { image } = openOverlayTop(path);
  try {
    if (!(image instanceof Qcow2Disk)) return 0;
    const clusterSize = image.clusterSize;
    let compressed = 0;
    for (let offset = 0; offset < image.size;) {
      const extent = image.blockStatus(offset, Math.min(STATUS_SPAN, image.size - offset));
      const length = Math.max(1, extent.length);
      if (extent.allocated && !extent.zero) {
        const last = Math.ceil((offset + length) / clusterSize);
        for (let cluster = Math.floor(offset / clusterSize); cluster < last; cluster++) {
          if (image.clusterMap.classify(cluster) === ClusterKind.Compressed) compressed++;
        }
      }
      offset += length;
    }
    return compressed;
  } finally {
    image.close();
  }
}

/** One internal snapshot with everything qemu-img prints about it. */
export interface SnapshotRow {
  id: string;
  name: string;
  vmStateSize: number;
  dateSeconds: number;
  dateNanos: number;
  vmClockNanos: number;
  /** Instructions executed (record/replay); undefined when the image does not say. */
  icount?: number;
}

/** The internal snapshots of the qcow2 image at `path`, read without locking it. */
export function readSnapshots(path: string): SnapshotRow[] {
  const { bytes, size } = readHead(path);
  const header = parseHeader(bytes, size, path);
  if (header.nbSnapshots === 0) return [];
  const file = openImageFile(path, { readOnly: true, lock: false });
  try {
    const read = (offset: number, length: number) => readAt(file.fd, offset, length);
    return readSnapshotTable(read, header, size, path).map((s) => {
      // Extra data past vm_state_size and disk_size: the icount (qcow2 v3, QEMU >= 5.2).
      const icount = s.extra.length >= 8
        ? Number(new DataView(s.extra.buffer, s.extra.byteOffset, 8).getBigInt64(0))
        : -1;
      return {
        id: s.id,
        name: s.name,
        vmStateSize: s.vmStateSize,
        dateSeconds: s.dateSeconds,
        dateNanos: s.dateNanos,
        vmClockNanos: s.vmClockNanos,
        icount: icount >= 0 ? icount : undefined,
      };
    });
  } finally {
    closeFd(file.fd);
  }
}

/** The first bytes of the file (enough for the header and its extensions) and its size. */
function readHead(path: string): { bytes: Uint8Array; size: number } {
  const file = openImageFile(path, { readOnly: true, lock: false });
  try {
    const bytes = readAt(file.fd, 0, Math.min(file.size, 2 * 1024 * 1024));
    return { bytes, size: file.size };
  } finally {
    closeFd(file.fd);
  }
}

/** `length` bytes at `offset`; past the end of the file they read as zeroes. */
function readAt(fd: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = pread(fd, out.subarray(done), offset + done);
    if (n <= 0) break;
    done += n;
  }
  return out;
}
