/**
 * The qcow2 on-disk format (version 2 and 3, from the public specification): the header,
 * its extensions, entry layouts, and the checks that refuse a malformed image before
 * anything in it is trusted. All numbers on disk are big-endian.
 *
 * @module
 */

import { ImageError } from "./errors.ts";

/** "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb;
/** The fixed part of a version 2 header; version 3 headers are at least 104 bytes. */
export const V2_HEADER_LENGTH = 72;
export const V3_HEADER_LENGTH = 104;
/** What Denovisor writes: the version 3 header with the compression type byte, padded. */
export const WRITTEN_HEADER_LENGTH = 112;

/** Header field offsets that are rewritten in place. */
export const HEADER_SIZE_AT = 24;
export const HEADER_L1_SIZE_AT = 36;
export const HEADER_REFCOUNT_TABLE_AT = 48;
export const HEADER_SNAPSHOTS_AT = 60;
export const HEADER_INCOMPATIBLE_AT = 72;
export const HEADER_AUTOCLEAR_AT = 88;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1;
export const INCOMPAT_CORRUPT = 2;
export const INCOMPAT_EXTERNAL_DATA = 4;
export const INCOMPAT_COMPRESSION_TYPE = 8;
export const INCOMPAT_EXTENDED_L2 = 16;
/** Compatible feature bits. */
export const COMPAT_LAZY_REFCOUNTS = 1;

/** Header extension types. */
export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_ENCRYPTION = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** L1/L2 entry bits, as seen in the entry's high and low 32-bit halves. */
export const HI_COPIED = 0x8000_0000;
export const HI_COMPRESSED = 0x4000_0000;
/** Bits 9..55 of an entry hold a host offset. */
export const HI_OFFSET_MASK = 0x00ff_ffff;
export const LO_OFFSET_MASK = 0xffff_fe00;
/** Bit 0 of a standard L2 entry: the cluster reads as zeroes (version 3). */
export const LO_ZERO = 1;

/** The most refcount table or L1 table bytes Denovisor accepts (QEMU's limits). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
export const MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
/** Virtual sizes beyond this are refused (offsets must stay exact in JavaScript numbers). */
export const MAX_VIRTUAL_SIZE = 2 ** 52;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;

/** A parsed, validated qcow2 header. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: number;
  compatible: number;
  autoclear: number;
  refcountOrder: number;
  headerLength: number;
  backingFile?: string;
  backingFormat?: string;
  /** Feature names from the feature name table extension, keyed "type:bit". */
  featureNames: Map<string, string>;
}

const be = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Reads a big-endian u64 that must fit a JavaScript number; `what` names it in errors. */
export function readU64(view: DataView, at: number, path: string, what: string): number {
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  if (hi >= 0x20_0000) {
    throw new ImageError(
      `Image ${path} is malformed: ${what} 0x${hi.toString(16)}${
        lo.toString(16).padStart(8, "0")
      } is absurdly large`,
    );
  }
  return hi * 0x1_0000_0000 + lo;
}

/** Writes `value` (a safe integer) as a big-endian u64. */
export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x1_0000_0000));
  view.setUint32(at + 4, value >>> 0);
}

/** The host offset in bits 9..55 of an L1 or L2 entry given as two halves. */
export function entryOffset(hi: number, lo: number): number {
  return (hi & HI_OFFSET_MASK) * 0x1_0000_0000 + ((lo & LO_OFFSET_MASK) >>> 0);
}

/** The compressed cluster descriptor of an L2 entry: where the deflate stream lies. */
export function compressedRange(
  hi: number,
  lo: number,
  clusterBits: number,
): { offset: number; end: number } {
  const value = (BigInt(hi & 0x3fff_ffff) << 32n) | BigInt(lo >>> 0);
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const offset = Number(value & ((1n << offsetBits) - 1n));
  const extraSectors = Number(value >> offsetBits);
  return { offset, end: Math.floor(offset / 512) * 512 + (extraSectors + 1) * 512 };
}

const INCOMPATIBLE_NAMES: Record<number, string> = {
  0: "dirty",
  1: "corrupt",
  2: "external data file",
  3: "compression type",
  4: "extended L2 entries",
};

/**
 * Parses and validates the header in `bytes` (the start of the file, at least one
 * cluster when the file has one) of a file of `fileSize` bytes. Throws `ImageError` with a
 * precise message for anything malformed or unsupported.
 */
export function parseHeader(bytes: Uint8Array, fileSize: number, path: string): Qcow2Header {
  const bad = (what: string) => new ImageError(`Image ${path} is malformed: ${what}`);
  if (bytes.length < V2_HEADER_LENGTH) {
    throw bad(
      `the header is truncated (${bytes.length} bytes; a qcow2 header has at least ${V2_HEADER_LENGTH})`,
    );
  }
  const view = be(bytes);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw bad("no qcow2 magic");
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new ImageError(
      `Image ${path} has qcow2 version ${version}; only versions 2 and 3 are supported`,
    );
  }
  const u64 = (at: number, what: string) => readU64(view, at, path, what);
  const clusterBits = view.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw bad(`cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  const clusterSize = 2 ** clusterBits;
  const header: Qcow2Header = {
    version,
    clusterBits,
    size: u64(24, "the virtual size"),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(40, "the L1 table offset"),
    refcountTableOffset: u64(48, "the refcount table offset"),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(64, "the snapshot table offset"),
    incompatible: 0,
    compatible: 0,
    autoclear: 0,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    featureNames: new Map(),
  };
  let compressionType = 0;
  if (version === 3) {
    if (bytes.length < V3_HEADER_LENGTH) {
      throw bad(`the version 3 header is truncated (${bytes.length} of ${V3_HEADER_LENGTH} bytes)`);
    }
    const incompatibleHi = view.getUint32(72);
    header.incompatible = view.getUint32(76);
    header.compatible = view.getUint32(84);
    header.autoclear = view.getUint32(92);
    header.refcountOrder = view.getUint32(96);
    header.headerLength = view.getUint32(100);
    if (header.headerLength < V3_HEADER_LENGTH || header.headerLength > clusterSize) {
      throw bad(
        `header_length ${header.headerLength} is outside ${V3_HEADER_LENGTH}..${clusterSize}`,
      );
    }
    if (header.headerLength > bytes.length) {
      throw bad(`the header is truncated (${bytes.length} of ${header.headerLength} bytes)`);
    }
    if (header.headerLength > 104) compressionType = view.getUint8(104);
    if (incompatibleHi !== 0) {
      throw new ImageError(
        `Image ${path} uses unknown incompatible features (high bits 0x${
          incompatibleHi.toString(16)
        }); Denovisor cannot open it`,
      );
    }
  }
  parseExtensions(bytes, header, clusterSize, path);
  checkFeatures(header, compressionType, path);
  if (header.refcountOrder > 6) throw bad(`refcount_order ${header.refcountOrder} is above 6`);
  if (view.getUint32(32) !== 0) {
    throw new ImageError(`Image ${path} is encrypted; encrypted qcow2 images are not supported`);
  }
  if (header.size > MAX_VIRTUAL_SIZE) {
    throw bad(`the virtual size ${header.size} is absurd (above ${MAX_VIRTUAL_SIZE} bytes)`);
  }
  checkTables(header, fileSize, path);
  header.backingFile = parseBackingFile(view, bytes, header, path);
  return header;
}

function checkFeatures(header: Qcow2Header, compressionType: number, path: string): void {
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION_TYPE;
  const unknown = header.incompatible & ~known;
  if (unknown !== 0) {
    const names: string[] = [];
    for (let bit = 0; bit < 32; bit++) {
      if ((unknown & (1 << bit)) === 0) continue;
      names.push(header.featureNames.get(`0:${bit}`) ?? INCOMPATIBLE_NAMES[bit] ?? `bit ${bit}`);
    }
    throw new ImageError(
      `Image ${path} uses incompatible features Denovisor does not support: ${
        names.join(", ")
      }; convert it with qemu-img convert -O qcow2 first`,
    );
  }
  if ((header.incompatible & INCOMPAT_COMPRESSION_TYPE) !== 0 && compressionType !== 0) {
    throw new ImageError(
      `Image ${path} uses compression type ${compressionType} (zstd); only zlib (0) is supported`,
    );
  }
}

function parseExtensions(
  bytes: Uint8Array,
  header: Qcow2Header,
  clusterSize: number,
  path: string,
): void {
  const view = be(bytes);
  const limit = Math.min(bytes.length, clusterSize);
  let at = header.headerLength;
  const decoder = new TextDecoder();
  for (;;) {
    if (at + 8 > limit) {
      if (at >= limit) return; // no end marker within the first cluster: treat as the end
      throw new ImageError(`Image ${path} is malformed: a header extension is truncated`);
    }
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === EXT_END) return;
    const data = at + 8;
    if (data + length > limit) {
      throw new ImageError(
        `Image ${path} is malformed: header extension 0x${
          type.toString(16)
        } (${length} bytes) runs past the first cluster`,
      );
    }
    if (type === EXT_BACKING_FORMAT) {
      header.backingFormat = decoder.decode(bytes.subarray(data, data + length));
    } else if (type === EXT_FEATURE_NAMES) {
      for (let entry = data; entry + 48 <= data + length; entry += 48) {
        const name = decoder.decode(bytes.subarray(entry + 2, entry + 48)).replace(/\0.*$/s, "");
        header.featureNames.set(`${bytes[entry]}:${bytes[entry + 1]}`, name);
      }
    } else if (type === EXT_DATA_FILE) {
      throw new ImageError(`Image ${path} uses an external data file; this is not supported`);
    } else if (type === EXT_ENCRYPTION) {
      throw new ImageError(`Image ${path} is encrypted; encrypted qcow2 images are not supported`);
    }
    // Other extensions (bitmaps, unknown ones) are optional: ignored, as the spec allows.
    at = data + Math.ceil(length / 8) * 8;
  }
}

/** Checks that the L1, refcount and snapshot tables lie inside the file and apart. */
function checkTables(header: Qcow2Header, fileSize: number, path: string): void {
  const clusterSize = 2 ** header.clusterBits;
  const bad = (what: string) => new ImageError(`Image ${path} is malformed: ${what}`);
  const l2Entries = clusterSize / 8;
  const needed = Math.ceil(header.size / clusterSize / l2Entries);
  if (header.l1Size < needed) {
    throw bad(`the L1 table has ${header.l1Size} entries but the virtual size needs ${needed}`);
  }
  if (header.l1Size * 8 > MAX_L1_BYTES) {
    throw bad(`the L1 table has ${header.l1Size} entries, absurdly many`);
  }
  const regions: { name: string; start: number; end: number }[] = [
    { name: "the header", start: 0, end: clusterSize },
  ];
  const table = (name: string, offset: number, bytes: number) => {
    if (bytes === 0) return;
    if (offset % clusterSize !== 0) {
      throw bad(`${name} offset 0x${offset.toString(16)} is not cluster aligned`);
    }
    if (offset + bytes > fileSize) {
      throw bad(
        `${name} (0x${
          offset.toString(16)
        }, ${bytes} bytes) lies beyond the end of the file (${fileSize} bytes)`,
      );
    }
    const end = offset + Math.ceil(bytes / clusterSize) * clusterSize;
    for (const other of regions) {
      if (offset < other.end && other.start < end) throw bad(`${name} overlaps ${other.name}`);
    }
    regions.push({ name, start: offset, end });
  };
  if (header.refcountTableClusters === 0) throw bad("the refcount table has no clusters");
  if (header.refcountTableClusters * clusterSize > MAX_REFCOUNT_TABLE_BYTES) {
    throw bad(`the refcount table has ${header.refcountTableClusters} clusters, absurdly many`);
  }
  table("the L1 table", header.l1TableOffset, header.l1Size * 8);
  table(
    "the refcount table",
    header.refcountTableOffset,
    header.refcountTableClusters * clusterSize,
  );
  if (header.nbSnapshots > 0) {
    if (header.snapshotsOffset % clusterSize !== 0) {
      throw bad(
        `the snapshot table offset 0x${header.snapshotsOffset.toString(16)} is not aligned`,
      );
    }
    if (header.snapshotsOffset >= fileSize) {
      throw bad(`the snapshot table lies beyond the end of the file`);
    }
    if (header.nbSnapshots > 65536) throw bad(`${header.nbSnapshots} snapshots, absurdly many`);
  }
}

function parseBackingFile(
  view: DataView,
  bytes: Uint8Array,
  header: Qcow2Header,
  path: string,
): string | undefined {
  const offset = readU64(view, 8, path, "the backing file name offset");
  if (offset === 0) return undefined;
  const length = view.getUint32(16);
  if (length > 1023) {
    throw new ImageError(`Image ${path} is malformed: the backing file name is ${length} bytes`);
  }
  if (offset + length > Math.min(bytes.length, 2 ** header.clusterBits)) {
    throw new ImageError(
      `Image ${path} is malformed: the backing file name lies outside the header cluster`,
    );
  }
  return new TextDecoder().decode(bytes.subarray(offset, offset + length));
}
