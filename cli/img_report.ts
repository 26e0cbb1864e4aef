/**
 * Output of `denovisor img info`, `check` and `map` in qemu-img's human and JSON shapes,
 * so scripts written for qemu-img read it unchanged.
 *
 * @module
 */

import { type CheckResult, ImageError, type ImageInfo } from "../storage/image_ops/image_access.ts";
import type { MapEntry } from "../storage/image_ops/map.ts";
import type { Qcow2Details, SnapshotRow } from "../storage/image_ops/qcow2_details.ts";
import { humanSize } from "./img_args.ts";

/**
 * The images of a chain, top first, named as qemu-img names them: a relative backing file
 * is joined to the directory part of its overlay's name as given ("vm/top.qcow2" backed
 * by "base.qcow2" shows "vm/base.qcow2"), which is also a valid path from here.
 */
export function chainOf(info: ImageInfo): ImageInfo[] {
  const chain: ImageInfo[] = [];
  let name = info.path;
  for (let at: ImageInfo | undefined = info; at; at = at.backing) {
    const shown: ImageInfo = { ...at, path: name };
    if (at.backingFile !== undefined) {
      shown.fullBackingFilename = joinBacking(name, at.backingFile);
      name = shown.fullBackingFilename;
    }
    chain.push(shown);
  }
  return chain;
}

function joinBacking(overlay: string, backing: string): string {
  if (backing.startsWith("/")) return backing;
  const slash = overlay.lastIndexOf("/");
  return slash < 0 ? backing : overlay.slice(0, slash + 1) + backing;
}

/** One image as qemu-img info --output json prints it (keys in qemu's names). */
export function infoJson(
  info: ImageInfo,
  details?: Qcow2Details,
  snapshots?: SnapshotRow[],
): Record<string, unknown> {
  // Keys in the order qemu-img prints them, so the text matches too.
  const json: Record<string, unknown> = {};
  if (snapshots !== undefined && snapshots.length > 0) {
    json.snapshots = snapshots.map((s) => ({
      ...(s.icount !== undefined ? { icount: s.icount } : {}),
      "vm-clock-nsec": s.vmClockNanos % 1e9,
      name: s.name,
      "date-sec": s.dateSeconds,
      "date-nsec": s.dateNanos,
      "vm-clock-sec": Math.floor(s.vmClockNanos / 1e9),
      id: s.id,
      "vm-state-size": s.vmStateSize,
    }));
  }
  if (info.backingFile !== undefined && info.backingFormat !== undefined) {
    json["backing-filename-format"] = info.backingFormat;
  }
  json["virtual-size"] = info.virtualSize;
  json.filename = info.path;
  if (info.clusterSize !== undefined) json["cluster-size"] = info.clusterSize;
  json.format = info.format;
  json["actual-size"] = info.actualSize;
  if (details !== undefined) json["format-specific"] = { type: "qcow2", data: details };
  if (info.backingFile !== undefined) {
    if (info.fullBackingFilename !== undefined) {
      json["full-backing-filename"] = info.fullBackingFilename;
    }
    json["backing-filename"] = info.backingFile;
  }
  json["dirty-flag"] = info.dirty ?? false;
  return json;
}

/** One image as qemu-img info prints it for people. */
export function infoHuman(
  info: ImageInfo,
  details?: Qcow2Details,
  snapshots?: SnapshotRow[],
): string {
  const lines = [
    `image: ${info.path}`,
    `file format: ${info.format}`,
    `virtual size: ${humanSize(info.virtualSize)} (${info.virtualSize} bytes)`,
    `disk size: ${humanSize(info.actualSize)}`,
  ];
  if (info.clusterSize !== undefined) lines.push(`cluster_size: ${info.clusterSize}`);
  if (info.dirty) lines.push("dirty flag: yes");
  if (info.backingFile !== undefined) {
    const full = info.fullBackingFilename;
    lines.push(
      `backing file: ${info.backingFile}${
        full !== undefined && full !== info.backingFile ? ` (actual path: ${full})` : ""
      }`,
    );
    if (info.backingFormat !== undefined) lines.push(`backing file format: ${info.backingFormat}`);
  }
  if (snapshots !== undefined && snapshots.length > 0) {
    lines.push("Snapshot list:", ...snapshotTable(snapshots));
  }
  if (details !== undefined) {
    lines.push("Format specific information:");
    // qemu-img prints the JSON keys with spaces: "compression type: zlib".
    for (const [key, value] of Object.entries(details)) {
      lines.push(`    ${key.replaceAll("-", " ")}: ${value}`);
    }
  }
  return lines.join("\n");
}

/** The snapshot table as qemu-img prints it ("%-9s %-16s %8s%20s%13s%11s"). */
export function snapshotTable(snapshots: readonly SnapshotRow[]): string[] {
  const row = (id: string, tag: string, size: string, date: string, clock: string, n: string) =>
    `${id.padEnd(9)} ${tag.padEnd(16)} ${size.padStart(8)}${date.padStart(20)}${
      clock.padStart(13)
    }${n.padStart(11)}`;
  return [
    row("ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT"),
    ...snapshots.map((s) =>
      row(
        s.id,
        s.name,
        humanSize(s.vmStateSize),
        localDate(s.dateSeconds),
        vmClock(s.vmClockNanos),
        s.icount === undefined ? "" : String(s.icount),
      )
    ),
  ];
}

/** "2026-11-27 02:43:02" in local time, as qemu-img prints snapshot dates. */
function localDate(seconds: number): string {
  const date = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${
    two(date.getHours())
  }:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** The guest clock at the snapshot, "HH:MM:SS.mmm". */
function vmClock(nanos: number): string {
  const seconds = Math.floor(nanos / 1e9);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${
    two(seconds % 60)
  }.${String(Math.floor(nanos / 1e6) % 1000).padStart(3, "0")}`;
}

/** qemu-img check's exit status: 0 clean, 2 corruptions, 3 only leaks. */
export function checkStatus(result: CheckResult): number {
  const errors = result.errors.length;
  if (errors > 0) return 2;
  return result.leaks - result.leaksFixed > 0 ? 3 : 0;
}

/** qemu-img check --output json. */
export function checkJson(
  path: string,
  result: CheckResult,
  compressed = 0,
): Record<string, unknown> {
  const json: Record<string, unknown> = {
    "image-end-offset": result.imageEndOffset,
    "total-clusters": result.totalClusters,
    "check-errors": 0,
    "allocated-clusters": result.allocatedClusters,
    filename: path,
    format: result.format,
  };
  if (result.errors.length > 0) json.corruptions = result.errors.length;
  if (result.leaks > 0) json.leaks = result.leaks;
  if (result.errorsFixed > 0) json["corruptions-fixed"] = result.errorsFixed;
  if (result.leaksFixed > 0) json["leaks-fixed"] = result.leaksFixed;
  if (result.fragmentedClusters > 0) json["fragmented-clusters"] = result.fragmentedClusters;
  if (compressed > 0) json["compressed-clusters"] = compressed;
  return json;
}

/** qemu-img check's human report (the ERROR lines go to stderr, as qemu-img prints them). */
export function checkHuman(result: CheckResult, compressed = 0): string {
  const lines: string[] = [];
  if (result.leaksFixed > 0 || result.errorsFixed > 0) {
    lines.push(
      "The following inconsistencies were found and repaired:",
      "",
      `    ${result.leaksFixed} leaked clusters`,
      `    ${result.errorsFixed} corruptions`,
      "",
      "Double checking the fixed image now...",
    );
  }
  const leaks = result.leaks - result.leaksFixed;
  if (result.errors.length === 0 && leaks <= 0) {
    lines.push("No errors were found on the image.");
  }
  if (result.errors.length > 0) {
    lines.push(
      "",
      `${result.errors.length} errors were found on the image.`,
      "Data may be corrupted, or further writes to the image may corrupt it.",
    );
  }
  if (leaks > 0) {
    lines.push(
      "",
      `${leaks} leaked clusters were found on the image.`,
      "This means waste of disk space, but no harm to data.",
    );
  }
  // qemu-img prints fragmentation and compression as shares of the allocated clusters,
  // and the line only when something is allocated.
  const { allocatedClusters: allocated, totalClusters: total } = result;
  if (total > 0 && allocated > 0) {
    lines.push(
      `${allocated}/${total} = ${fixed2((100 * allocated) / total)}% allocated, ${
        fixed2((100 * result.fragmentedClusters) / allocated)
      }% fragmented, ${fixed2((100 * compressed) / allocated)}% compressed clusters`,
    );
  }
  lines.push(`Image end offset: ${result.imageEndOffset}`);
  return lines.join("\n");
}

/** qemu-img map --output json: one object per line inside a JSON array. */
export function mapJson(entries: MapEntry[]): string {
  const lines = entries.map((e) =>
    `{ "start": ${e.start}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${
      e.offset === undefined ? "" : `, "offset": ${e.offset}`
    }}`
  );
  return `[${lines.join(",\n")}]`;
}

/** qemu-img map's human table: the runs holding data, where they are stored, in which file. */
export function mapHuman(entries: MapEntry[]): string {
  const hex = (n: number) => (n === 0 ? "0" : `0x${n.toString(16)}`);
  const lines = [`${"Offset".padEnd(16)}${"Length".padEnd(16)}${"Mapped to".padEnd(16)}File`];
  for (const e of entries) {
    if (!e.data) continue;
    if (e.offset === undefined) {
      throw new ImageError(
        `${e.file} holds compressed clusters, which have no plain location; use --output json`,
      );
    }
    lines.push(
      `${hex(e.start).padEnd(16)}${hex(e.length).padEnd(16)}${hex(e.offset).padEnd(16)}${e.file}`,
    );
  }
  return lines.join("\n");
}

/** printf("%0.2f"): two decimals, ties to even as C rounds exact binary halves (0.625 -> 0.62). */
function fixed2(value: number): string {
  const scaled = value * 100;
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return (rounded / 100).toFixed(2);
}
