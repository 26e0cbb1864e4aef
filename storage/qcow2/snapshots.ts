/**
 * qcow2 internal snapshots with `qemu-img snapshot` semantics: create (-c) copies the
 * active L1 table and takes a reference on every cluster it reaches, clearing COPIED;
 * apply (-a) makes a snapshot's tables the active ones; delete (-d) drops a snapshot's
 * references and sets COPIED again where the active image is the only user left. List
 * (-l) reads the table. Refcount increments are written before the tables that use them,
 * and decrements come after the switch, so a crash leaves leaks at worst.
 *
 * @module
 */

import { openImage } from "../image.ts";
import { ImageError } from "./errors.ts";
import {
  compressedRange,
  entryOffset,
  HEADER_SIZE_AT,
  HEADER_SNAPSHOTS_AT,
  HI_COMPRESSED,
  HI_COPIED,
  writeU64,
} from "./format.ts";
import type { HostFile } from "./host_file.ts";
import { Qcow2Disk } from "./qcow2_disk.ts";
import type { Refcounts } from "./refcounts.ts";
import { readSnapshotTable, serializeSnapshotTable, type SnapshotEntry } from "./snapshot_table.ts";

/** One snapshot as `listSnapshots` reports it. */
export interface SnapshotInfo {
  id: string;
  name: string;
  /** Seconds since the epoch. */
  date: number;
  vmStateSize: number;
  diskSize?: number;
}

/** The internal snapshots of the qcow2 image at `path`. */
export function listSnapshots(path: string): SnapshotInfo[] {
  return withImage(path, true, (image) =>
    table(image).map((s) => ({
      id: s.id,
      name: s.name,
      date: s.dateSeconds,
      vmStateSize: s.vmStateSize,
      diskSize: s.diskSize,
    })));
}

/** Creates internal snapshot `name` of the image's current state. */
export function createSnapshot(path: string, name: string): void {
  withImage(path, false, (image) => {
    const snapshots = table(image);
    if (name === "" || snapshots.some((s) => s.name === name || s.id === name)) {
      throw new ImageError(`Image ${path} already has a snapshot named ${name}; pick another name`);
    }
    const { file, refcounts, cs } = parts(image);
    const l1Size = image.header.l1Size;
    const l1Offset = image.clusterMap.l1Offset;
    const l1 = file.readBytes(l1Offset, l1Size * 8);
    const l1View = new DataView(l1.buffer);
    for (let i = 0; i < l1Size; i++) {
      l1View.setUint32(i * 8, l1View.getUint32(i * 8) & ~HI_COPIED);
    }
    const copy = refcounts.allocate(Math.max(1, Math.ceil(l1Size * 8 / cs)));
    file.write(copy, l1);
    references(file, copy, l1Size, cs, image.header.clusterBits, (c, n) => {
      refcounts.change(c, n, 1);
    });
    clearCopied(file, l1Offset, l1Size, cs);
    const now = Date.now();
    const ids = snapshots.map((s) => Number(s.id)).filter(Number.isInteger);
    snapshots.push({
      l1Offset: copy,
      l1Size,
      id: String(Math.max(0, ...ids) + 1),
      name,
      dateSeconds: Math.floor(now / 1000),
      dateNanos: (now % 1000) * 1_000_000,
      vmClockNanos: 0,
      vmStateSize: 0,
      diskSize: image.size,
      extra: new Uint8Array(0),
    });
    writeTable(image, snapshots);
  });
}

/** Reverts the image to snapshot `nameOrId` (its size too); the snapshot is kept. */
export function applySnapshot(path: string, nameOrId: string): void {
  withImage(path, false, (image) => {
    const snapshot = find(image, nameOrId);
    const { file, refcounts, cs } = parts(image);
    const bits = image.header.clusterBits;
    references(file, snapshot.l1Offset, snapshot.l1Size, cs, bits, (c, n) => {
      refcounts.change(c, n, 1);
    });
    const l1 = file.readBytes(snapshot.l1Offset, snapshot.l1Size * 8);
    const view = new DataView(l1.buffer);
    for (let i = 0; i < snapshot.l1Size; i++) {
      view.setUint32(i * 8, view.getUint32(i * 8) & ~HI_COPIED);
    }
    const clusters = Math.max(1, Math.ceil(snapshot.l1Size * 8 / cs));
    const active = refcounts.allocate(clusters);
    file.write(active, l1);
    file.sync();
    const oldOffset = image.clusterMap.l1Offset;
    const oldSize = image.header.l1Size;
    const header = new Uint8Array(24);
    const headerView = new DataView(header.buffer);
    writeU64(headerView, 0, snapshot.diskSize ?? image.size);
    headerView.setUint32(12, snapshot.l1Size);
    writeU64(headerView, 16, active);
    file.write(HEADER_SIZE_AT, header);
    file.sync();
    references(file, oldOffset, oldSize, cs, bits, (c, n) => {
      if (refcounts.change(c, n, -1) > 0 && n === 1) file.punchHole(c * cs, cs);
    });
    refcounts.change(oldOffset / cs, Math.max(1, Math.ceil(oldSize * 8 / cs)), -1);
    setCopied(file, refcounts, active, snapshot.l1Size, cs);
  });
}

/** Deletes snapshot `nameOrId`, releasing the clusters only it used. */
export function deleteSnapshot(path: string, nameOrId: string): void {
  withImage(path, false, (image) => {
    const snapshot = find(image, nameOrId);
    const { file, refcounts, cs } = parts(image);
    writeTable(image, table(image).filter((s) => s !== snapshot && s.id !== snapshot.id));
    references(file, snapshot.l1Offset, snapshot.l1Size, cs, image.header.clusterBits, (c, n) => {
      if (refcounts.change(c, n, -1) > 0 && n === 1) file.punchHole(c * cs, cs);
    });
    refcounts.change(snapshot.l1Offset / cs, Math.max(1, Math.ceil(snapshot.l1Size * 8 / cs)), -1);
    setCopied(file, refcounts, image.clusterMap.l1Offset, image.header.l1Size, cs);
  });
}

function withImage<T>(path: string, readOnly: boolean, fn: (image: Qcow2Disk) => T): T {
  const image = openImage(path, { readOnly });
  try {
    if (!(image instanceof Qcow2Disk)) {
      throw new ImageError(`Image ${path} is ${image.format}; internal snapshots need qcow2`);
    }
    const result = fn(image);
    if (!readOnly) image.flush();
    return result;
  } finally {
    image.close();
  }
}

function parts(image: Qcow2Disk): { file: HostFile; refcounts: Refcounts; cs: number } {
  return { file: image.hostFile, refcounts: image.refcounts!, cs: image.clusterSize };
}

function table(image: Qcow2Disk): SnapshotEntry[] {
  const file = image.hostFile;
  return readSnapshotTable((o, n) => file.readBytes(o, n), image.header, file.size, image.path);
}

function find(image: Qcow2Disk, nameOrId: string): SnapshotEntry {
  const snapshots = table(image);
  const found = snapshots.find((s) => s.id === nameOrId) ??
    snapshots.find((s) => s.name === nameOrId);
  if (found === undefined) {
    throw new ImageError(
      `Image ${image.path} has no snapshot ${nameOrId}; list them with snapshot -l`,
    );
  }
  return found;
}

/** Writes `snapshots` as a new table, switches the header to it, releases the old one. */
function writeTable(image: Qcow2Disk, snapshots: SnapshotEntry[]): void {
  const { file, refcounts, cs } = parts(image);
  const old = table(image);
  const oldOffset = image.header.snapshotsOffset;
  const oldLength = serializeSnapshotTable(old).length;
  const bytes = serializeSnapshotTable(snapshots);
  let offset = 0;
  if (bytes.length > 0) {
    offset = refcounts.allocate(Math.ceil(bytes.length / cs));
    file.write(offset, bytes);
  }
  file.sync();
  const header = new Uint8Array(12);
  const view = new DataView(header.buffer);
  view.setUint32(0, snapshots.length);
  writeU64(view, 4, offset);
  file.write(HEADER_SNAPSHOTS_AT, header);
  file.sync();
  image.header.nbSnapshots = snapshots.length;
  image.header.snapshotsOffset = offset;
  if (old.length > 0) refcounts.change(oldOffset / cs, Math.ceil(oldLength / cs), -1);
}

/**
 * Calls `visit(cluster, count)` for every cluster the L1 table at `l1Offset` reaches: its L2
 * tables, data clusters (also preallocated zero clusters) and compressed data.
 */
function references(
  file: HostFile,
  l1Offset: number,
  l1Size: number,
  cs: number,
  clusterBits: number,
  visit: (cluster: number, count: number) => void,
): void {
  const l1 = new DataView(file.readBytes(l1Offset, l1Size * 8).buffer);
  for (let i = 0; i < l1Size; i++) {
    const l2 = entryOffset(l1.getUint32(i * 8), l1.getUint32(i * 8 + 4));
    if (l2 === 0) continue;
    const entries = new DataView(file.readBytes(l2, cs).buffer);
    for (let j = 0; j < cs / 8; j++) {
      const hi = entries.getUint32(j * 8);
      const lo = entries.getUint32(j * 8 + 4);
      if ((hi & HI_COMPRESSED) !== 0) {
        const { offset, end } = compressedRange(hi, lo, clusterBits);
        const first = Math.floor(offset / cs);
        visit(first, Math.floor((end - 1) / cs) - first + 1);
        continue;
      }
      const host = entryOffset(hi, lo);
      if (host !== 0) visit(host / cs, 1);
    }
    visit(l2 / cs, 1);
  }
}

/** Clears COPIED in the L1 table at `l1Offset` and every L2 table it points to. */
function clearCopied(file: HostFile, l1Offset: number, l1Size: number, cs: number): void {
  rewriteTableEntries(file, l1Offset, l1Size, cs, {
    l2Entry: (hi) => hi & ~HI_COPIED,
    l1Entry: (hi) => hi & ~HI_COPIED,
  });
}

/** Sets COPIED wherever the active tables are a cluster's only user (refcount 1). */
function setCopied(
  file: HostFile,
  refcounts: Refcounts,
  l1Offset: number,
  l1Size: number,
  cs: number,
): void {
  const flag = (hi: number, owned: boolean) => owned ? (hi | HI_COPIED) >>> 0 : hi & ~HI_COPIED;
  rewriteTableEntries(file, l1Offset, l1Size, cs, {
    l2Entry: (hi, lo) => {
      if ((hi & HI_COMPRESSED) !== 0) return hi;
      const host = entryOffset(hi, lo);
      return host === 0 ? hi : flag(hi, refcounts.get(host / cs) === 1);
    },
    l1Entry: (hi, l2) => flag(hi, refcounts.get(l2 / cs) === 1),
  });
}

/**
 * Rewrites the high words of every entry of the L2 tables the L1 table at `l1Offset`
 * points to (each table written back), then of the L1 entries themselves.
 */
function rewriteTableEntries(
  file: HostFile,
  l1Offset: number,
  l1Size: number,
  cs: number,
  rewrite: {
    l2Entry: (hi: number, lo: number) => number;
    l1Entry: (hi: number, l2Offset: number) => number;
  },
): void {
  const bytes = file.readBytes(l1Offset, l1Size * 8);
  const l1 = new DataView(bytes.buffer);
  for (let i = 0; i < l1Size; i++) {
    const hi = l1.getUint32(i * 8);
    const l2 = entryOffset(hi, l1.getUint32(i * 8 + 4));
    if (l2 === 0) continue;
    const table = file.readBytes(l2, cs);
    const entries = new DataView(table.buffer);
    for (let j = 0; j < cs / 8; j++) {
      entries.setUint32(
        j * 8,
        rewrite.l2Entry(entries.getUint32(j * 8), entries.getUint32(j * 8 + 4)),
      );
    }
    file.write(l2, table);
    l1.setUint32(i * 8, rewrite.l1Entry(hi, l2));
  }
  file.write(l1Offset, bytes);
}
