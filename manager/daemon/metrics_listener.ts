/**
 * GET /metrics on a TCP address (`denovisor daemon --metrics-listen ADDR:PORT`), for a
 * Prometheus server on another host, behind an allow-list of networks (`--metrics-allow
 * CIDR`, repeatable; loopback only when none is given). It serves nothing but the metrics:
 * the API stays on its unix socket, where file permissions decide who may use it.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import { formatMetrics, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { gatherMetrics, type MetricsSources } from "./metrics_route.ts";

/** A bad --metrics-listen or --metrics-allow value (code `usage`). */
export class MetricsOptionError extends DenovisorError {
  constructor(message: string) {
    super("usage", message);
  }
}

/** Where to listen and who may ask. */
export interface MetricsListenOptions {
  /** "ADDR:PORT": 127.0.0.1:9177, 0.0.0.0:9177, [::]:9177. */
  listen: string;
  /** Networks allowed to scrape, as CIDRs (default: loopback only). */
  allow?: readonly string[];
}

/** A network: its address bytes and prefix length. */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

/** Networks allowed when no --metrics-allow is given. */
const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** Parses "ADDR:PORT" ("[v6]:PORT" for IPv6). */
export function parseListenAddress(text: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const hostname = match?.[1] ?? match?.[2];
  if (!match || hostname === undefined || port > 65535 || parseAddress(hostname) === undefined) {
    throw new MetricsOptionError(
      `--metrics-listen: '${text}' is not ADDR:PORT; e.g. 127.0.0.1:9177, 0.0.0.0:9177 or [::]:9177`,
    );
  }
  return { hostname, port };
}

/** Parses "ADDR/PREFIX" (a bare address is one host). */
export function parseCidr(text: string): Cidr {
  const [address, prefixText, extra] = text.split("/");
  const bytes = parseAddress(address);
  const prefix = prefixText === undefined ? (bytes?.length ?? 0) * 8 : Number(prefixText);
  if (
    bytes === undefined || extra !== undefined ||
    (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) || prefix > bytes.length * 8
  ) {
    throw new MetricsOptionError(
      `--metrics-allow: '${text}' is not a network; e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8`,
    );
  }
  return { bytes, prefix };
}

/** Whether `address` (as a peer's address reads) is inside `cidr`. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  let bytes = parseAddress(address);
  if (bytes === undefined) return false;
  // An IPv4 peer on an IPv6 socket shows as ::ffff:a.b.c.d.
  if (bytes.length === 16 && cidr.bytes.length === 4 && isV4Mapped(bytes)) bytes = bytes.slice(12);
  if (bytes.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3] & mask) !== (cidr.bytes[bit >> 3] & mask)) return false;
  }
  return true;
}

/** Serves GET /metrics on the address; `close()` stops it. */
export function startMetricsListener(
  options: MetricsListenOptions,
  sources: MetricsSources,
  log: (line: string) => void,
): { port: number; close(): Promise<void> } {
  const { hostname, port } = parseListenAddress(options.listen);
  const allowed = (options.allow?.length ? options.allow : LOOPBACK).map(parseCidr);
  const server = Deno.serve({ hostname, port, onListen() {} }, async (request, info) => {
    const peer = (info.remoteAddr as Deno.NetAddr).hostname;
    if (!allowed.some((cidr) => cidrContains(cidr, peer))) {
      return new Response(`${peer} is not in --metrics-allow\n`, { status: 403 });
    }
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") return new Response("Only /metrics is served here\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Use GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const text = formatMetrics(await gatherMetrics(sources));
    return new Response(request.method === "HEAD" ? null : text, {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    });
  });
  const bound = (server.addr as Deno.NetAddr).port;
  log(`metrics on http://${options.listen.replace(/:\d+$/, `:${bound}`)}/metrics`);
  return { port: bound, close: () => server.shutdown() };
}

/** The bytes of an IPv4 or IPv6 address, or undefined. */
function parseAddress(text: string): Uint8Array | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split(".").map(Number);
    return parts.every((part) => part <= 255) ? new Uint8Array(parts) : undefined;
  }
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return undefined;
  let head = text;
  let tail4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail4 = parseAddress(text.slice(lastColon + 1));
    if (tail4 === undefined || tail4.length !== 4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string) => part === "" ? [] : part.split(":");
  const left = words(halves[0]);
  const right = halves.length === 2 ? words(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) {
    return undefined;
  }
  const all = [...left, ...Array(Math.max(0, missing)).fill("0"), ...right];
  if (all.some((word) => !/^[0-9a-fA-F]{1,4}$/.test(word))) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((word, index) => {
    const value = parseInt(word, 16);
    bytes[index * 2] = value >> 8;
    bytes[index * 2 + 1] = value & 0xff;
  });
  if (tail4) bytes.set(tail4, 12);
  return bytes;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff &&
    bytes[11] === 0xff;
}
