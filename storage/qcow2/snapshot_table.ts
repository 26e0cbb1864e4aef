/**
 * The qcow2 internal snapshot table: parsing (validated) and serializing.
 *
 * @module
 */

import { ImageError } from "./errors.ts";
import { type Qcow2Header, readU64, writeU64 } from "./format.ts";

/** One internal snapshot as the table stores it. */
export interface SnapshotEntry {
  l1Offset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSeconds: number;
  dateNanos: number;
  vmClockNanos: number;
  vmStateSize: number;
  /** The virtual disk size when the snapshot was taken (version 3 extra data). */
  diskSize?: number;
  /** Extra data bytes beyond the ones Denovisor knows, kept as they are. */
  extra: Uint8Array;
}

/** The most bytes a snapshot table may take (QEMU's limit). */
const MAX_TABLE_BYTES = 64 * 1024 * 1024;

/** Reads the snapshot table through `read(offset, length)`. */
export function readSnapshotTable(
  read: (offset: number, length: number) => Uint8Array,
  header: Qcow2Header,
  fileSize: number,
  path: string,
): SnapshotEntry[] {
  const snapshots: SnapshotEntry[] = [];
  if (header.nbSnapshots === 0) return snapshots;
  const bad = (what: string) => new ImageError(`Image ${path} is malformed: ${what}`);
  const cs = 2 ** header.clusterBits;
  let at = header.snapshotsOffset;
  const decoder = new TextDecoder();
  for (let i = 0; i < header.nbSnapshots; i++) {
    if (at + 40 > fileSize || at - header.snapshotsOffset > MAX_TABLE_BYTES) {
      throw bad(`snapshot ${i} lies beyond the end of the file`);
    }
    const fixed = read(at, 40);
    const view = new DataView(fixed.buffer, fixed.byteOffset, 40);
    const idSize = view.getUint16(12);
    const nameSize = view.getUint16(14);
    const extraSize = view.getUint32(36);
    if (extraSize > 1024) throw bad(`snapshot ${i} has ${extraSize} bytes of extra data`);
    const rest = read(at + 40, extraSize + idSize + nameSize);
    const l1Offset = readU64(view, 0, path, `snapshot ${i}'s L1 table offset`);
    const l1Size = view.getUint32(8);
    if (l1Offset % cs !== 0 || l1Offset + l1Size * 8 > fileSize || l1Size * 8 > 32 * 2 ** 20) {
      throw bad(`snapshot ${i}'s L1 table (0x${l1Offset.toString(16)}) is out of range`);
    }
    const extraView = new DataView(rest.buffer, rest.byteOffset, extraSize);
    let vmStateSize = view.getUint32(32);
    let diskSize: number | undefined;
    if (extraSize >= 8) {
      vmStateSize = readU64(extraView, 0, path, "a snapshot's VM state size");
    }
    if (extraSize >= 16) diskSize = readU64(extraView, 8, path, "a snapshot's disk size");
    snapshots.push({
      l1Offset,
      l1Size,
      dateSeconds: view.getUint32(16),
      dateNanos: view.getUint32(20),
      vmClockNanos: readU64(view, 24, path, "a snapshot's VM clock"),
      vmStateSize,
      diskSize,
      extra: rest.slice(16, Math.max(16, extraSize)),
      id: decoder.decode(rest.subarray(extraSize, extraSize + idSize)),
      name: decoder.decode(rest.subarray(extraSize + idSize, extraSize + idSize + nameSize)),
    });
    at += Math.ceil((40 + extraSize + idSize + nameSize) / 8) * 8;
  }
  return snapshots;
}

/** The byte length `snapshots` take as a table. */
export function snapshotTableLength(snapshots: readonly SnapshotEntry[]): number {
  return serializeSnapshotTable(snapshots).length;
}

/** Serializes `snapshots` (version 3 layout, 16 bytes of extra data at least). */
export function serializeSnapshotTable(snapshots: readonly SnapshotEntry[]): Uint8Array {
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const snapshot of snapshots) {
    const id = encoder.encode(snapshot.id);
    const name = encoder.encode(snapshot.name);
    const extraSize = 16 + snapshot.extra.length;
    const length = Math.ceil((40 + extraSize + id.length + name.length) / 8) * 8;
    const bytes = new Uint8Array(length);
    const view = new DataView(bytes.buffer);
    writeU64(view, 0, snapshot.l1Offset);
    view.setUint32(8, snapshot.l1Size);
    view.setUint16(12, id.length);
    view.setUint16(14, name.length);
    view.setUint32(16, snapshot.dateSeconds);
    view.setUint32(20, snapshot.dateNanos);
    writeU64(view, 24, snapshot.vmClockNanos);
    view.setUint32(32, Math.min(snapshot.vmStateSize, 0xffff_ffff));
    view.setUint32(36, extraSize);
    writeU64(view, 40, snapshot.vmStateSize);
    writeU64(view, 48, snapshot.diskSize ?? 0);
    bytes.set(snapshot.extra, 56);
    bytes.set(id, 40 + extraSize);
    bytes.set(name, 40 + extraSize + id.length);
    parts.push(bytes);
  }
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const table = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    table.set(part, at);
    at += part.length;
  }
  return table;
}
