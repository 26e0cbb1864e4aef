/**
 * qcow2 consistency check: rebuilds every cluster's refcount from the metadata (header,
 * refcount structures, active and snapshot L1/L2 tables, data and compressed clusters,
 * snapshot table) and compares it with the stored refcounts, like `qemu-img check`.
 *
 * @module
 */

import {
  compressedRange,
  entryOffset,
  HEADER_INCOMPATIBLE_AT,
  HI_COMPRESSED,
  HI_COPIED,
  INCOMPAT_DIRTY,
  LO_ZERO,
  parseHeader,
} from "./format.ts";
import { HostFile } from "./host_file.ts";
import { Refcounts } from "./refcounts.ts";
import { readSnapshotTable, snapshotTableLength } from "./snapshot_table.ts";

/** The qcow2 part of a `CheckResult`. */
export interface Qcow2CheckResult {
  /** Corruptions, each described. */
  errors: string[];
  /** Leaked clusters. */
  leaks: number;
  leaksFixed: number;
  errorsFixed: number;
  allocatedClusters: number;
  totalClusters: number;
  fragmentedClusters: number;
  imageEndOffset: number;
}

/** Checks (and with `repair`, fixes refcounts of) the qcow2 image at `path`. */
export function checkQcow2(path: string, repair?: "leaks" | "all"): Qcow2CheckResult {
  const file = HostFile.open(path, repair === undefined);
  try {
    return check(file, repair);
  } finally {
    file.close();
  }
}

function check(file: HostFile, repair: "leaks" | "all" | undefined): Qcow2CheckResult {
  const path = file.path;
  const header = parseHeader(
    file.readBytes(0, Math.min(file.size, 2 * 1024 * 1024)),
    file.size,
    path,
  );
  const cs = 2 ** header.clusterBits;
  const fileClusters = Math.ceil(file.size / cs);
  const computed = new Uint32Array(fileClusters);
  const errors: string[] = [];
  const count = (offset: number, bytes: number, what: string) => {
    if (offset % cs !== 0 && !what.startsWith("compressed")) {
      errors.push(`${what} at 0x${offset.toString(16)} is not cluster aligned`);
      return;
    }
    const first = Math.floor(offset / cs);
    const last = Math.floor((offset + Math.max(bytes, 1) - 1) / cs);
    for (let c = first; c <= last; c++) {
      if (c >= fileClusters) {
        errors.push(`${what} at 0x${offset.toString(16)} lies beyond the end of the file`);
        return;
      }
      computed[c]++;
    }
  };
  count(0, cs, "the header");
  const refcounts = Refcounts.load(file, header);
  count(refcounts.tableOffset, refcounts.tableClusters * cs, "the refcount table");
  refcounts.blockOffsets.forEach((offset) => {
    if (offset !== 0) count(offset, cs, "a refcount block");
  });
  const stats = { allocated: 0, fragmented: 0, next: 0 };
  const l1Copied: { index: number; l2: number; copied: boolean }[] = [];
  const dataCopied: { l2: number; index: number; host: number; copied: boolean }[] = [];
  const walk = (l1Offset: number, l1Size: number, active: boolean) => {
    count(l1Offset, l1Size * 8, active ? "the L1 table" : "a snapshot L1 table");
    const l1 = new DataView(file.readBytes(l1Offset, l1Size * 8).buffer);
    for (let i = 0; i < l1Size; i++) {
      const hi = l1.getUint32(i * 8);
      const l2 = entryOffset(hi, l1.getUint32(i * 8 + 4));
      if (l2 === 0) {
        // COPIED says "refcount 1", which an unallocated table cannot have (qemu-img
        // check reports it too).
        if (active && (hi & HI_COPIED) !== 0) {
          errors.push(`L1 entry ${i} has the COPIED flag set but no L2 table (offset 0)`);
        }
        continue;
      }
      const before = errors.length;
      count(l2, cs, `the L2 table of L1 entry ${i}`);
      if (errors.length > before) continue;
      if (active) l1Copied.push({ index: i, l2, copied: (hi & HI_COPIED) !== 0 });
      const table = new DataView(file.readBytes(l2, cs).buffer);
      for (let j = 0; j < cs / 8; j++) {
        const eHi = table.getUint32(j * 8);
        const eLo = table.getUint32(j * 8 + 4);
        if ((eHi & HI_COMPRESSED) !== 0) {
          const { offset, end } = compressedRange(eHi, eLo, header.clusterBits);
          count(offset, end - offset, "compressed data");
          if (active) stats.allocated++;
          continue;
        }
        const host = entryOffset(eHi, eLo);
        if (host === 0) continue;
        count(host, cs, `the data cluster of guest cluster ${i * (cs / 8) + j}`);
        if (!active) continue;
        dataCopied.push({ l2, index: j, host, copied: (eHi & HI_COPIED) !== 0 });
        if (header.version >= 3 && (eLo & LO_ZERO) !== 0) continue;
        stats.allocated++;
        if (stats.next !== 0 && host !== stats.next) stats.fragmented++;
        stats.next = host + cs;
      }
    }
  };
  walk(header.l1TableOffset, header.l1Size, true);
  const snapshots = readSnapshotTable(
    (offset, length) => file.readBytes(offset, length),
    header,
    file.size,
    path,
  );
  if (snapshots.length > 0) {
    count(header.snapshotsOffset, snapshotTableLength(snapshots), "the snapshot table");
  }
  for (const snapshot of snapshots) walk(snapshot.l1Offset, snapshot.l1Size, false);

  let leaks = 0;
  let leaksFixed = 0;
  let errorsFixed = 0;
  let end = 0;
  for (let c = 0; c < fileClusters; c++) {
    const stored = refcounts.get(c);
    const expected = computed[c];
    if (stored !== 0 || expected !== 0) end = c + 1;
    if (stored === expected) continue;
    if (stored > expected) {
      leaks++;
      if (repair !== undefined) {
        refcounts.change(c, 1, expected - stored);
        leaksFixed++;
      }
    } else if (repair === "all") {
      refcounts.change(c, 1, expected - stored);
      errorsFixed++;
    } else {
      errors.push(`cluster ${c} has refcount ${stored} but ${expected} references`);
    }
  }
  for (const { index, l2, copied } of l1Copied) {
    if (copied !== (refcounts.get(l2 / cs) === 1)) {
      errors.push(
        `L1 entry ${index}: the COPIED flag does not match refcount ${refcounts.get(l2 / cs)}`,
      );
    }
  }
  for (const { l2, index, host, copied } of dataCopied) {
    if (copied !== (refcounts.get(host / cs) === 1)) {
      errors.push(
        `L2 table 0x${l2.toString(16)} entry ${index}: the COPIED flag does not match refcount ${
          refcounts.get(host / cs)
        }`,
      );
    }
  }
  if (repair === "all" && errors.length === 0 && (header.incompatible & INCOMPAT_DIRTY) !== 0) {
    const field = new Uint8Array(8);
    new DataView(field.buffer).setUint32(4, header.incompatible & ~INCOMPAT_DIRTY);
    file.sync();
    file.write(HEADER_INCOMPATIBLE_AT, field);
  }
  if (repair !== undefined) file.sync();
  return {
    errors,
    leaks,
    leaksFixed,
    errorsFixed,
    allocatedClusters: stats.allocated,
    totalClusters: Math.ceil(header.size / cs),
    fragmentedClusters: stats.fragmented,
    imageEndOffset: end * cs,
  };
}
