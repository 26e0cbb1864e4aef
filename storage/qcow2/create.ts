/**
 * Writes a new, empty qcow2 version 3 image: header with extensions (backing format,
 * feature name table), backing file name, a one-cluster refcount table, one refcount
 * block (16-bit refcounts) and a zeroed L1 table.
 *
 * @module
 */

import { ImageError } from "./errors.ts";
import {
  EXT_BACKING_FORMAT,
  EXT_FEATURE_NAMES,
  QCOW2_MAGIC,
  writeU64,
  WRITTEN_HEADER_LENGTH,
} from "./format.ts";

/** What the new image holds. */
export interface Qcow2CreateOptions {
  /** Virtual size in bytes (rounded up to 512). */
  size: number;
  /** Power of two, 4 KiB..2 MiB. */
  clusterSize: number;
  backingFile?: string;
  backingFormat?: string;
}

/** Feature names QEMU writes too, so tools can name the bits. */
const FEATURE_NAMES: [number, number, string][] = [
  [0, 0, "dirty bit"],
  [0, 1, "corrupt bit"],
  [0, 2, "external data file"],
  [0, 3, "compression type"],
  [0, 4, "extended L2 entries"],
  [1, 0, "lazy refcounts"],
  [2, 0, "bitmaps"],
  [2, 1, "raw external data"],
];

/** Creates the image file at `path`; refuses to overwrite an existing file. */
export function createQcow2(path: string, options: Qcow2CreateOptions): void {
  const cs = options.clusterSize;
  if (!Number.isInteger(cs) || cs < 4096 || cs > 2 * 1024 * 1024 || (cs & (cs - 1)) !== 0) {
    throw new ImageError(
      `Cannot create ${path}: cluster size ${cs} is not a power of two between 4 KiB and 2 MiB`,
    );
  }
  const size = Math.ceil(options.size / 512) * 512;
  if (!Number.isSafeInteger(size) || size < 0 || size > 2 ** 52) {
    throw new ImageError(`Cannot create ${path}: size ${options.size} is not a usable size`);
  }
  const clusterBits = Math.log2(cs);
  const l1Size = Math.ceil(size / cs / (cs / 8));
  const l1Clusters = Math.max(1, Math.ceil(l1Size * 8 / cs));
  const used = 3 + l1Clusters;
  if (used > cs * 8 / 16) {
    throw new ImageError(
      `Cannot create ${path}: size ${size} is too large for ${cs}-byte clusters`,
    );
  }
  const header = new Uint8Array(cs);
  const view = new DataView(header.buffer);
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, 3);
  view.setUint32(20, clusterBits);
  writeU64(view, 24, size);
  view.setUint32(36, l1Size);
  writeU64(view, 40, 3 * cs);
  writeU64(view, 48, cs);
  view.setUint32(56, 1);
  view.setUint32(96, 4);
  view.setUint32(100, WRITTEN_HEADER_LENGTH);
  let at = WRITTEN_HEADER_LENGTH;
  const encoder = new TextEncoder();
  const extension = (type: number, data: Uint8Array) => {
    const padded = Math.ceil(data.length / 8) * 8;
    if (at + 8 + padded + 8 > cs) {
      throw new ImageError(`Cannot create ${path}: the header does not fit in one cluster`);
    }
    view.setUint32(at, type);
    view.setUint32(at + 4, data.length);
    header.set(data, at + 8);
    at += 8 + padded;
  };
  if (options.backingFormat !== undefined) {
    extension(EXT_BACKING_FORMAT, encoder.encode(options.backingFormat));
  }
  const names = new Uint8Array(FEATURE_NAMES.length * 48);
  FEATURE_NAMES.forEach(([type, bit, name], i) => {
    names[i * 48] = type;
    names[i * 48 + 1] = bit;
    names.set(encoder.encode(name), i * 48 + 2);
  });
  if (at + 8 + names.length + 8 <= cs) extension(EXT_FEATURE_NAMES, names);
  at += 8; // the end-of-extensions marker (type 0, length 0)
  if (options.backingFile !== undefined) {
    const name = encoder.encode(options.backingFile);
    if (name.length === 0 || name.length > 1023 || at + name.length > cs) {
      throw new ImageError(
        `Cannot create ${path}: the backing file name must be 1..1023 bytes and fit the header`,
      );
    }
    header.set(name, at);
    writeU64(view, 8, at);
    view.setUint32(16, name.length);
  }
  const table = new Uint8Array(cs);
  writeU64(new DataView(table.buffer), 0, 2 * cs);
  const block = new Uint8Array(cs);
  for (let i = 0; i < used; i++) block[i * 2 + 1] = 1;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    Deno.chmodSync(path, 0o600); // images are private whatever the umask
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new ImageError(
        `Cannot create ${path}: the file exists; remove it or pick another name`,
      );
    }
    throw new ImageError(`Cannot create ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    for (const chunk of [header, table, block]) writeAll(file, chunk);
    file.truncateSync(used * cs);
    file.syncSync();
  } catch (error) {
    file.close();
    Deno.removeSync(path);
    throw error;
  }
  file.close();
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}
