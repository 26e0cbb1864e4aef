/**
 * Sizes with units as users of xl, virsh and qemu-img write them ("512M", "2G",
 * "1.5GiB"), and byte counts printed for people. Used by the CLI's flags, domain
 * definitions and pool volumes alike.
 *
 * @module
 */

import { DenovisorError } from "./errors.ts";

const MULTIPLIERS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size that cannot be read. The message is `what: reason`; callers that name the field
 * their own way (a JSON path, a flag) use `reason` alone.
 */
export class SizeError extends DenovisorError {
  /** What was being read, e.g. "--memory" or "memory". */
  readonly what: string;
  /** What was wrong, without `what`. */
  readonly reason: string;

  constructor(what: string, reason: string) {
    super("invalid", `${what}: ${reason}`);
    this.what = what;
    this.reason = reason;
  }
}

/**
 * Parses "512M", "2G", "1.5GiB", "4096K" into bytes. A bare number means `bareUnit`
 * (MiB for guest memory, as in xl.cfg). Throws `SizeError` naming `what`.
 */
export function parseSize(text: string, what: string, bareUnit = "b"): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match?.[2].toLowerCase() ?? "";
  const multiplier = MULTIPLIERS[unit === "" ? bareUnit : unit];
  if (!match || multiplier === undefined) {
    throw new SizeError(
      what,
      `cannot read size '${text}'; write a number with an optional unit (K, M, G, T)`,
    );
  }
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) throw new SizeError(what, `size '${text}' is too large`);
  return bytes;
}

/** A byte count for people: "512 MiB", "1.5 GiB". */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}
