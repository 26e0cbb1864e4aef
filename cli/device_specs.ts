/**
 * The `--disk` and `--nic` option syntax of `denovisor run`, parsed into plain specs.
 * Comma-separated `key=value` items, the first one positional, as in QEMU and xl.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";
import {
  IMAGE_FORMATS,
  type ImageFormat,
  isOneOf,
  type Transport,
  TRANSPORTS,
} from "../common/enums.ts";
import {
  DISK_SERIAL_RULE,
  INTERFACE_NAME_RULE,
  isDiskSerial,
  isInterfaceName,
  macProblem,
} from "../common/validators.ts";
import { parseRateLimit } from "../devices/virtio/rate_limit_spec.ts";
import { type RateLimiterConfig, RateLimiterConfigError } from "../devices/virtio/rate_limiter.ts";

export type { Transport };

export interface DiskSpec {
  path: string;
  /** The image format; probed from the file when omitted. */
  format?: ImageFormat;
  readOnly: boolean;
  transport: Transport;
  serial?: string;
  rateLimit?: RateLimiterConfig;
  /** virtio (default) or sata: a disk on the AHCI controller of a firmware boot. */
  bus: "virtio" | "sata";
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
  if (!isOneOf(value, TRANSPORTS)) {
    throw new UsageError(`${what}: transport=${value} is not one of ${TRANSPORTS.join(", ")}`);
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
 * Parses `PATH[,readonly][,format=raw|qcow2][,transport=pci|mmio][,serial=ID][,bus=virtio|sata][,bw=RATE][,ops=RATE]`; rates
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
  if (serial !== undefined && !isDiskSerial(serial)) {
    throw new UsageError(`${what}: serial=${serial} must be ${DISK_SERIAL_RULE}`);
  }
  const format = takeString(items, "format", what);
  if (format !== undefined && !isOneOf(format, IMAGE_FORMATS)) {
    throw new UsageError(`${what}: format=${format} is not one of ${IMAGE_FORMATS.join(", ")}`);
  }
  const bus = takeString(items, "bus", what) ?? "virtio";
  if (bus !== "virtio" && bus !== "sata") {
    throw new UsageError(`${what}: bus=${bus} is not one of virtio, sata`);
  }
  const spec: DiskSpec = {
    path,
    format,
    readOnly: readOnly === true,
    transport: takeTransport(items, what, fallback),
    serial,
    rateLimit: takeRateLimit(items, what),
    bus,
  };
  refuseLeftovers(
    items,
    what,
    "readonly, format, transport, serial, bus, bw, ops, bw_burst, ops_burst",
  );
  if (bus === "sata" && (spec.rateLimit !== undefined || serial !== undefined)) {
    throw new UsageError(`${what}: bus=sata takes no serial or rate limit yet; drop them`);
  }
  return spec;
}

function takeBridge(items: Map<string, string | true>, what: string): string | undefined {
  const bridge = takeString(items, "bridge", what);
  if (bridge !== undefined && !isInterfaceName(bridge)) {
    throw new UsageError(
      `${what}: bridge=${bridge} is not a valid interface name (${INTERFACE_NAME_RULE})`,
    );
  }
  return bridge;
}

/** Parses `tap=NAME|auto[,mac=MAC][,bridge=BR][,transport=pci|mmio][,bw=RATE][,ops=RATE]`. */
export function parseNicSpec(text: string, fallback: Transport = "pci"): NicSpec {
  const what = "--nic";
  const [first, items] = parseItems(text, what);
  if (!first.startsWith("tap=") || first.length === 4) {
    throw new UsageError(`${what}: start with tap=NAME or tap=auto`);
  }
  const tap = first.slice(4);
  if (tap !== "auto" && !isInterfaceName(tap)) {
    throw new UsageError(
      `${what}: tap=${tap} is not a valid interface name (${INTERFACE_NAME_RULE})`,
    );
  }
  const mac = takeString(items, "mac", what);
  const problem = mac === undefined ? undefined : macProblem(mac);
  if (problem !== undefined) throw new UsageError(`${what}: mac=${mac}: ${problem}`);
  const spec: NicSpec = {
    tap,
    mac: mac?.toLowerCase(),
    bridge: takeBridge(items, what),
    transport: takeTransport(items, what, fallback),
    rateLimit: takeRateLimit(items, what),
  };
  refuseLeftovers(items, what, "mac, bridge, transport, bw, ops, bw_burst, ops_burst");
  return spec;
}
