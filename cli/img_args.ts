/**
 * Argument values of `denovisor img` written the qemu-img way: sizes with k/M/G/T/P/E
 * suffixes, `-o key=value,...` option lists, format names.
 *
 * @module
 */

import type { ImageFormat } from "../storage/image_ops/image_access.ts";
import { UsageError } from "./usage_error.ts";

const SUFFIXES: Record<string, number> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
  e: 2 ** 60,
};

/** Parses "10G", "512k", "1.5M", "4096" (bytes) as qemu-img does. */
export function parseImageSize(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)([a-z]?)$/i.exec(text.trim());
  const multiplier = match ? SUFFIXES[match[2].toLowerCase()] : undefined;
  if (!match || multiplier === undefined) {
    throw new UsageError(
      `${what}: cannot read size '${text}'; write a number with an optional suffix k, M, G, T, P or E (e.g. 10G)`,
    );
  }
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(`${what}: size '${text}' is larger than Denovisor handles (2^53 bytes)`);
  }
  return bytes;
}

/** A resize target: an absolute size, or a change (`+1G`, `-512M`). */
export interface SizeChange {
  relative: -1 | 0 | 1;
  bytes: number;
}

/** Parses qemu-img resize's `[+|-]SIZE`. */
export function parseSizeChange(text: string, what: string): SizeChange {
  const sign = text[0] === "+" ? 1 : text[0] === "-" ? -1 : 0;
  return { relative: sign, bytes: parseImageSize(sign === 0 ? text : text.slice(1), what) };
}

/** Image format names users may write, mapped to the ones Denovisor handles. */
export function parseFormat(text: string | undefined, what: string): ImageFormat | undefined {
  if (text === undefined) return undefined;
  if (text === "raw" || text === "qcow2") return text;
  throw new UsageError(`${what}: unknown image format '${text}'; use raw or qcow2`);
}

/** `-o` options Denovisor understands when creating an image. */
export interface CreateOptionValues {
  clusterSize?: number;
  preallocation?: "off" | "metadata" | "full";
  backingFile?: string;
  backingFormat?: ImageFormat;
  size?: number;
}

/**
 * qcow2 options whose only value Denovisor writes is qemu's default: accepted with that
 * value so scripts that spell the defaults out keep working, refused with another.
 */
const FIXED_OPTIONS: Record<string, string> = {
  compat: "1.1",
  lazy_refcounts: "off",
  refcount_bits: "16",
  extended_l2: "off",
  compression_type: "zlib",
};

/** The `-o` keys, for `-o help` and error messages. */
export const CREATE_OPTION_HELP = `Supported -o options:
  size=SIZE                       virtual size (k, M, G, T suffixes)
  cluster_size=SIZE               qcow2 cluster size, a power of two from 4k to 2M (default 64k)
  preallocation=off|metadata|full metadata: qcow2 tables written up front; full: data too
  backing_file=PATH               qcow2 overlay on PATH (relative to the new image's directory)
  backing_fmt=raw|qcow2           format of the backing file (probed when omitted)
  compat=1.1 lazy_refcounts=off refcount_bits=16 extended_l2=off compression_type=zlib
                                  accepted with these (qemu's default) values only`;

/** Parses `-o` lists (several `-o` are merged; later keys win). */
export function parseCreateOptions(lists: string[], what: string): CreateOptionValues {
  const values: CreateOptionValues = {};
  for (const list of lists) {
    for (const item of list.split(",")) {
      if (item === "") continue;
      const equals = item.indexOf("=");
      const key = equals < 0 ? item : item.slice(0, equals);
      const value = equals < 0 ? "" : item.slice(equals + 1);
      if (equals < 0 || value === "") {
        throw new UsageError(`${what}: option '${item}' needs a value (key=value); see -o help`);
      }
      applyOption(values, key, value, what);
    }
  }
  return values;
}

function applyOption(values: CreateOptionValues, key: string, value: string, what: string) {
  switch (key) {
    case "size":
      values.size = parseImageSize(value, `${what}: -o size`);
      return;
    case "cluster_size":
      values.clusterSize = parseImageSize(value, `${what}: -o cluster_size`);
      return;
    case "preallocation":
      if (value !== "off" && value !== "metadata" && value !== "full") {
        throw new UsageError(
          `${what}: preallocation '${value}' is not supported; use off, metadata or full`,
        );
      }
      values.preallocation = value;
      return;
    case "backing_file":
      values.backingFile = value;
      return;
    case "backing_fmt":
      values.backingFormat = parseFormat(value, `${what}: -o backing_fmt`);
      return;
  }
  if (FIXED_OPTIONS[key] === undefined) {
    throw new UsageError(`${what}: unknown option '${key}'; see -o help`);
  }
  if (FIXED_OPTIONS[key] !== value) {
    throw new UsageError(
      `${what}: ${key}=${value} is not supported; Denovisor writes ${key}=${FIXED_OPTIONS[key]}`,
    );
  }
}

/** `--output human|json`. */
export function parseOutput(text: string | undefined, what: string): "human" | "json" {
  if (text === undefined || text === "human") return "human";
  if (text === "json") return "json";
  throw new UsageError(`${what}: unknown output format '${text}'; use human or json`);
}

/** Requires exactly `count` positional arguments named `names`. */
export function positionals(list: string[], names: string[], what: string): string[] {
  if (list.length < names.length) {
    throw new UsageError(`${what}: missing ${names.slice(list.length).join(" and ")}; see --help`);
  }
  if (list.length > names.length) {
    throw new UsageError(`${what}: unexpected argument '${list[names.length]}'; see --help`);
  }
  return list;
}

/**
 * A human size as qemu-img prints it: three significant digits, binary units, switching
 * unit once the number would reach 1000 ("324 KiB", "1.25 MiB", "10 GiB").
 */
export function humanSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  const exponent = bytes > 0 ? Math.floor(Math.log2(bytes * 1.024)) : 0;
  const unit = Math.min(units.length - 1, Math.floor(exponent / 10));
  const value = bytes / 2 ** (unit * 10);
  return `${Number(value.toPrecision(3))} ${units[unit]}`;
}

/**
 * qemu-img's cache-mode flags (-t for the image written, -T for the one read). Scripts
 * pass them routinely (`-t none`); Denovisor accepts the modes and always writes through
 * the page cache, flushing before it reports success.
 */
export const CACHE_FLAGS = {
  t: { type: "string" },
  T: { type: "string" },
} as const;

const CACHE_MODES = ["none", "writeback", "unsafe", "directsync", "writethrough"];

/** Refuses cache modes qemu-img would refuse. */
export function checkCacheModes(values: { t?: string; T?: string }, what: string): void {
  for (const [flag, mode] of [["-t", values.t], ["-T", values.T]]) {
    if (mode !== undefined && !CACHE_MODES.includes(mode)) {
      throw new UsageError(
        `${what}: unknown cache mode '${mode}' for ${flag}; use ${CACHE_MODES.join(", ")}`,
      );
    }
  }
}
