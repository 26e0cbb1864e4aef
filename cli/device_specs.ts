/**
 * The `--disk` and `--nic` option syntax of `denovisor run`, parsed into plain specs.
 * Comma-separated `key=value` items, the first one positional, as in QEMU and xl.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** Where a virtio device sits. */
export type Transport = "pci" | "mmio";

/** A rate limit as written by the user: `bw` in bytes/s (units allowed), `ops` per second. */
export interface RateLimitSpec {
  bandwidth?: number;
  ops?: number;
}

export interface DiskSpec {
  path: string;
  readOnly: boolean;
  transport: Transport;
  serial?: string;
  rateLimit?: RateLimitSpec;
}

export interface NicSpec {
  /** A tap name, or "auto" to create one. */
  tap: string;
  mac?: string;
  bridge?: string;
  transport: Transport;
  rateLimit?: RateLimitSpec;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9 };

function parseRate(text: string, what: string, key: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(text);
  if (!match) throw new UsageError(`${what}: ${key}=${text} is not a rate (e.g. 50M or 1000)`);
  const value = Number(match[1]) * SIZE_UNITS[match[2].toLowerCase()];
  if (value <= 0) throw new UsageError(`${what}: ${key} must be above 0`);
  return Math.round(value);
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

function takeRateLimit(items: Map<string, string | true>, what: string) {
  const bw = takeString(items, "bw", what);
  const ops = takeString(items, "ops", what);
  if (bw === undefined && ops === undefined) return undefined;
  return {
    bandwidth: bw === undefined ? undefined : parseRate(bw, what, "bw"),
    ops: ops === undefined ? undefined : parseRate(ops, what, "ops"),
  };
}

function refuseLeftovers(items: Map<string, string | true>, what: string, known: string) {
  const [unknown] = items.keys();
  if (unknown !== undefined) {
    throw new UsageError(`${what}: unknown option '${unknown}'; known: ${known}`);
  }
}

/** Parses `PATH[,readonly][,transport=pci|mmio][,serial=ID][,bw=RATE][,ops=RATE]`. */
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
  const spec: DiskSpec = {
    path,
    readOnly: readOnly === true,
    transport: takeTransport(items, what, fallback),
    serial,
    rateLimit: takeRateLimit(items, what),
  };
  refuseLeftovers(items, what, "readonly, transport, serial, bw, ops");
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
  refuseLeftovers(items, what, "mac, bridge, transport, bw, ops");
  return spec;
}
