/**
 * The `--disk` and `--nic` option syntax of `denovisor run`, parsed into plain specs.
 * Comma-separated `key=value` items, the first one positional, as in QEMU and xl.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";
import type { ImageFormat } from "../storage/image.ts";
import { parseRateLimit } from "../devices/virtio/rate_limit_spec.ts";
import { type RateLimiterConfig, RateLimiterConfigError } from "../devices/virtio/rate_limiter.ts";

/** Where a virtio device sits. */
export type Transport = "pci" | "mmio";

export interface DiskSpec {
  path: string;
  /** The image format; probed from the file when omitted. */
  format?: ImageFormat;
  readOnly: boolean;
  transport: Transport;
  serial?: string;
  rateLimit?: RateLimiterConfig;
}

export interface NicSpec {
  /** A tap name, or "auto" to create one. */
  tap: string;
  mac?: string;
  bridge?: string;
  transport: Transport;
  rateLimit?: RateLimiterConfig;
}

function parseItems(text: string, what: string): [string, Map<string, string | true>] {
  const [first, ...rest] = text.split(",");
  if (!first) throw new UsageError(`${what}: '${text}' names nothing`);
  const items = new Map<string, string | true>();
  for (const item of rest) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    if (items.has(key)) throw new UsageError(`${what}: '${key}' given twice`);
    items.set(key, eq < 0 ? true : item.slice(eq + 1));
  }
  return [first, items];
}

function takeString(items: Map<string, string | true>, key: string, what: string) {
  const value = items.get(key);
  items.delete(key);
  if (value === true) throw new UsageError(`${what}: '${key}' needs a value (${key}=...)`);
  return value;
}

function takeTransport(items: Map<string, string | true>, what: string, fallback: Transport) {
  const value = takeString(items, "transport", what) ?? fallback;
  if (value !== "pci" && value !== "mmio") {
    throw new UsageError(`${what}: transport=${value} is not one of pci, mmio`);
  }
  return value;
}

const RATE_KEYS = ["bw", "ops", "bw_burst", "ops_burst"];

/** The rate-limit items (`bw=`, `ops=`, bursts) in the devices/virtio syntax. */
function takeRateLimit(items: Map<string, string | true>, what: string) {
  const parts: string[] = [];
  for (const key of RATE_KEYS) {
    const value = takeString(items, key, what);
    if (value !== undefined) parts.push(`${key}=${value}`);
  }
  if (parts.length === 0) return undefined;
  return parseLimit(parts.join(","), what);
}

/** Parses a rate-limit spec for option `what`, as a usage error when malformed. */
export function parseLimit(spec: string, what: string): RateLimiterConfig {
  try {
    return parseRateLimit(spec);
  } catch (error) {
    if (error instanceof RateLimiterConfigError) throw new UsageError(`${what}: ${error.message}`);
    throw error;
  }
}

function refuseLeftovers(items: Map<string, string | true>, what: string, known: string) {
  const [unknown] = items.keys();
  if (unknown !== undefined) {
    throw new UsageError(`${what}: unknown option '${unknown}'; known: ${known}`);
  }
}

/**
 * Parses `PATH[,readonly][,format=raw|qcow2][,transport=pci|mmio][,serial=ID][,bw=RATE][,ops=RATE]`; rates
 * as in devices/virtio/rate_limit_spec.ts (`bw=10M` is 10 MiB/s).
 */
export function parseDiskSpec(text: string, fallback: Transport = "pci"): DiskSpec {
  const what = "--disk";
  const [path, items] = parseItems(text, what);
  const readOnly = items.get("readonly");
  if (readOnly !== undefined && readOnly !== true) {
    throw new UsageError(`${what}: write 'readonly' without a value`);
  }
  items.delete("readonly");
  const serial = takeString(items, "serial", what);
  if (serial !== undefined && (serial.length > 20 || !/^[\x20-\x7e]*$/.test(serial))) {
    throw new UsageError(`${what}: serial=${serial} must be at most 20 printable ASCII characters`);
  }
  const format = takeString(items, "format", what);
  if (format !== undefined && format !== "raw" && format !== "qcow2") {
    throw new UsageError(`${what}: format=${format} is not one of raw, qcow2`);
  }
  const spec: DiskSpec = {
    path,
    format,
    readOnly: readOnly === true,
    transport: takeTransport(items, what, fallback),
    serial,
    rateLimit: takeRateLimit(items, what),
  };
  refuseLeftovers(
    items,
    what,
    "readonly, format, transport, serial, bw, ops, bw_burst, ops_burst",
  );
  return spec;
}

/** Parses `tap=NAME|auto[,mac=MAC][,bridge=BR][,transport=pci|mmio][,bw=RATE][,ops=RATE]`. */
export function parseNicSpec(text: string, fallback: Transport = "pci"): NicSpec {
  const what = "--nic";
  const [first, items] = parseItems(text, what);
  if (!first.startsWith("tap=") || first.length === 4) {
    throw new UsageError(`${what}: start with tap=NAME or tap=auto`);
  }
  const tap = first.slice(4);
  if (tap !== "auto" && !/^[a-zA-Z0-9_.-]{1,15}$/.test(tap)) {
    throw new UsageError(`${what}: tap=${tap} is not a valid interface name (1-15 characters)`);
  }
  const mac = takeString(items, "mac", what);
  if (mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) {
    throw new UsageError(`${what}: mac=${mac} is not a MAC address like 52:54:00:12:34:56`);
  }
  if (mac !== undefined && (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw new UsageError(`${what}: mac=${mac} is a multicast address; use a unicast one`);
  }
  const spec: NicSpec = {
    tap,
    mac: mac?.toLowerCase(),
    bridge: takeString(items, "bridge", what),
    transport: takeTransport(items, what, fallback),
    rateLimit: takeRateLimit(items, what),
  };
  refuseLeftovers(items, what, "mac, bridge, transport, bw, ops, bw_burst, ops_burst");
  return spec;
}
