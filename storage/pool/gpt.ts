/**
 * GUID partition tables, read and written from the UEFI specification (chapter 5): a
 * protective MBR, the primary header and entry array at the start of the disk, and their
 * backup copies at its end, each guarded by CRC32. The table on a device is untrusted:
 * every field is range-checked before use.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { closeFd, ioctlBytes, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../../ffi/libc_symbols.ts";
import { DenovisorError } from "../../common/errors.ts";

export const SECTOR = 512;
const ENTRY_COUNT = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRY_COUNT * ENTRY_SIZE) / SECTOR;
const HEADER_SIZE = 92;
const SIGNATURE = "EFI PART";
/** "Linux filesystem data", the type sfdisk and sgdisk give a partition by default. */
export const LINUX_DATA_GUID = "0fc63daf-8483-4772-8e79-3d69d8477de4";
const BLKGETSIZE64 = 0x80081272n;
/** Partitions start on 1 MiB boundaries, as parted and sfdisk align them. */
export const ALIGN_SECTORS = (1024 * 1024) / SECTOR;

/** One partition: sectors `firstLba..lastLba` inclusive. */
export interface GptPartition {
  /** 1-based slot in the entry array (the N of /dev/sdaN). */
  number: number;
  firstLba: number;
  lastLba: number;
  name: string;
  typeGuid: string;
  uniqueGuid: string;
}

/** A disk's partition table. */
export interface GptTable {
  diskGuid: string;
  totalSectors: number;
  firstUsableLba: number;
  lastUsableLba: number;
  partitions: GptPartition[];
}

/** An error in a partition table or a request to change one. */
export class GptError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The size in bytes of a block device or regular file. */
export function deviceSize(path: string): number {
  const info = Deno.statSync(path);
  if (!info.isBlockDevice) return info.size;
  const fd = openFile(path, O_RDONLY | O_CLOEXEC);
  try {
    const out = new BigUint64Array(1);
    ioctlBytes(fd, BLKGETSIZE64, new Uint8Array(out.buffer), `ioctl(BLKGETSIZE64, ${path})`);
    return Number(out[0]);
  } finally {
    closeFd(fd);
  }
}

/** An empty table for a disk of `totalSectors` sectors. */
export function emptyGpt(totalSectors: number): GptTable {
  if (totalSectors < 2 * (2 + ENTRY_SECTORS) + ALIGN_SECTORS) {
    throw new GptError(`A disk of ${totalSectors * SECTOR} bytes is too small for a GPT label`);
  }
  return {
    diskGuid: crypto.randomUUID(),
    totalSectors,
    firstUsableLba: 2 + ENTRY_SECTORS,
    lastUsableLba: totalSectors - 2 - ENTRY_SECTORS,
    partitions: [],
  };
}

/** The table on `path`, or undefined when it has no valid GPT (neither copy). */
export function readGpt(path: string): GptTable | undefined {
  const totalSectors = Math.floor(deviceSize(path) / SECTOR);
  if (totalSectors < 3) return undefined;
  const file = Deno.openSync(path, { read: true });
  try {
    return parseAt(file, 1, totalSectors) ?? parseAt(file, totalSectors - 1, totalSectors);
  } finally {
    file.close();
  }
}

function parseAt(file: Deno.FsFile, lba: number, totalSectors: number): GptTable | undefined {
  const header = readSectors(file, lba, 1);
  const view = new DataView(header.buffer);
  if (new TextDecoder().decode(header.subarray(0, 8)) !== SIGNATURE) return undefined;
  const headerSize = view.getUint32(12, true);
  if (headerSize < HEADER_SIZE || headerSize > SECTOR) return undefined;
  const storedCrc = view.getUint32(16, true);
  const copy = header.slice(0, headerSize);
  new DataView(copy.buffer).setUint32(16, 0, true);
  if (crc32(copy) !== storedCrc) return undefined;
  const firstUsableLba = Number(view.getBigUint64(40, true));
  const lastUsableLba = Number(view.getBigUint64(48, true));
  const entriesLba = Number(view.getBigUint64(72, true));
  const count = view.getUint32(80, true);
  const entrySize = view.getUint32(84, true);
  if (
    count === 0 || count > 1024 || entrySize < ENTRY_SIZE || entrySize % 8 !== 0 ||
    entrySize > 4096 || lastUsableLba >= totalSectors || firstUsableLba > lastUsableLba
  ) return undefined;
  const entrySectors = Math.ceil((count * entrySize) / SECTOR);
  if (entriesLba < 1 || entriesLba + entrySectors > totalSectors) return undefined;
  const entries = readSectors(file, entriesLba, entrySectors).subarray(0, count * entrySize);
  if (crc32(entries) !== view.getUint32(88, true)) return undefined;
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const entry = entries.subarray(i * entrySize, i * entrySize + ENTRY_SIZE);
    const typeGuid = guidFromBytes(entry.subarray(0, 16));
    if (typeGuid === "00000000-0000-0000-0000-000000000000") continue;
    const ev = new DataView(entry.buffer, entry.byteOffset, ENTRY_SIZE);
    const firstLba = Number(ev.getBigUint64(32, true));
    const lastLba = Number(ev.getBigUint64(40, true));
    if (firstLba < firstUsableLba || lastLba > lastUsableLba || lastLba < firstLba) {
      throw new GptError(`GPT entry ${i + 1} lies outside the usable sectors; relabel the disk`);
    }
    const nameBytes = entry.subarray(56, 128);
    let end = 0;
    while (end < 72 && (nameBytes[end] | nameBytes[end + 1]) !== 0) end += 2;
    partitions.push({
      number: i + 1,
      firstLba,
      lastLba,
      name: new TextDecoder("utf-16le").decode(nameBytes.subarray(0, end)),
      typeGuid,
      uniqueGuid: guidFromBytes(entry.subarray(16, 32)),
    });
  }
  return {
    diskGuid: guidFromBytes(header.subarray(56, 72)),
    totalSectors,
    firstUsableLba,
    lastUsableLba,
    partitions,
  };
}

/**
 * Writes `table` to `path`: protective MBR, backup entries and header first, then the
 * primary ones, so a crash in the middle leaves one valid copy; then fsync.
 */
export function writeGpt(path: string, table: GptTable): void {
  const entries = new Uint8Array(ENTRY_COUNT * ENTRY_SIZE);
  for (const p of table.partitions) {
    if (p.number < 1 || p.number > ENTRY_COUNT) throw new GptError(`No GPT slot ${p.number}`);
    const entry = entries.subarray((p.number - 1) * ENTRY_SIZE, p.number * ENTRY_SIZE);
    entry.set(guidToBytes(p.typeGuid), 0);
    entry.set(guidToBytes(p.uniqueGuid), 16);
    const ev = new DataView(entry.buffer, entry.byteOffset, ENTRY_SIZE);
    ev.setBigUint64(32, BigInt(p.firstLba), true);
    ev.setBigUint64(40, BigInt(p.lastLba), true);
    const name = encodeUtf16(p.name);
    if (name.length > 72) throw new GptError(`Partition name '${p.name}' is over 36 characters`);
    entry.set(name, 56);
  }
  const entriesCrc = crc32(entries);
  const last = table.totalSectors - 1;
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    writeSectors(file, last - ENTRY_SECTORS, entries);
    writeSectors(file, last, header(table, last, 1, last - ENTRY_SECTORS, entriesCrc));
    writeSectors(file, 0, protectiveMbr(table.totalSectors));
    writeSectors(file, 2, entries);
    writeSectors(file, 1, header(table, 1, last, 2, entriesCrc));
    file.syncSync();
  } finally {
    file.close();
  }
}

function header(
  table: GptTable,
  current: number,
  backup: number,
  entriesLba: number,
  entriesCrc: number,
): Uint8Array {
  const bytes = new Uint8Array(SECTOR);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(SIGNATURE), 0);
  view.setUint32(8, 0x00010000, true);
  view.setUint32(12, HEADER_SIZE, true);
  view.setBigUint64(24, BigInt(current), true);
  view.setBigUint64(32, BigInt(backup), true);
  view.setBigUint64(40, BigInt(table.firstUsableLba), true);
  view.setBigUint64(48, BigInt(table.lastUsableLba), true);
  bytes.set(guidToBytes(table.diskGuid), 56);
  view.setBigUint64(72, BigInt(entriesLba), true);
  view.setUint32(80, ENTRY_COUNT, true);
  view.setUint32(84, ENTRY_SIZE, true);
  view.setUint32(88, entriesCrc, true);
  view.setUint32(16, crc32(bytes.subarray(0, HEADER_SIZE)), true);
  return bytes;
}

function protectiveMbr(totalSectors: number): Uint8Array {
  const bytes = new Uint8Array(SECTOR);
  const view = new DataView(bytes.buffer);
  bytes.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], 446);
  view.setUint32(454, 1, true);
  view.setUint32(458, Math.min(totalSectors - 1, 0xffffffff), true);
  bytes[510] = 0x55;
  bytes[511] = 0xaa;
  return bytes;
}

/**
 * The first free, 1 MiB-aligned run of `sectors` sectors, or undefined when none is
 * large enough.
 */
export function findFreeRun(table: GptTable, sectors: number): number | undefined {
  const used = [...table.partitions].sort((a, b) => a.firstLba - b.firstLba);
  let start = alignUp(table.firstUsableLba);
  for (const p of used) {
    if (start + sectors - 1 < p.firstLba) return start;
    start = Math.max(start, alignUp(p.lastLba + 1));
  }
  return start + sectors - 1 <= table.lastUsableLba ? start : undefined;
}

/** The lowest unused slot number. */
export function freeSlot(table: GptTable): number {
  const taken = new Set(table.partitions.map((p) => p.number));
  for (let n = 1; n <= ENTRY_COUNT; n++) if (!taken.has(n)) return n;
  throw new GptError(`All ${ENTRY_COUNT} GPT slots are used; delete a volume first`);
}

function alignUp(lba: number): number {
  return Math.ceil(lba / ALIGN_SECTORS) * ALIGN_SECTORS;
}

function readSectors(file: Deno.FsFile, lba: number, count: number): Uint8Array {
  const bytes = new Uint8Array(count * SECTOR);
  file.seekSync(lba * SECTOR, Deno.SeekMode.Start);
  let done = 0;
  while (done < bytes.length) {
    const n = file.readSync(bytes.subarray(done));
    if (n === null) throw new GptError(`Device ended while reading sector ${lba}`);
    done += n;
  }
  return bytes;
}

function writeSectors(file: Deno.FsFile, lba: number, bytes: Uint8Array): void {
  file.seekSync(lba * SECTOR, Deno.SeekMode.Start);
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}

function encodeUtf16(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    bytes[2 * i] = text.charCodeAt(i) & 0xff;
    bytes[2 * i + 1] = text.charCodeAt(i) >> 8;
  }
  return bytes;
}

/** GUIDs are stored mixed-endian: the first three fields little-endian. */
function guidToBytes(guid: string): Uint8Array {
  const hex = guid.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new GptError(`Malformed GUID '${guid}'`);
  const b = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  return Uint8Array.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)]);
}

function guidFromBytes(b: Uint8Array): string {
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  const hex = order.map((i) => b[i].toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
