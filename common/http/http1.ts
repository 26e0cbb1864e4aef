/**
 * HTTP/1.1 framing for the unix-socket server (server.ts): request heads parsed from
 * untrusted bytes with hard limits, request bodies framed by Content-Length or chunked
 * encoding, and response heads. Only what the APIs need: no trailers, no upgrades.
 *
 * @module
 */

import { ApiError } from "./api_error.ts";

/** The largest request head (request line and headers) accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** A parsed request head. */
export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Headers;
}

/** How a request's body is framed. */
export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | {
  kind: "chunked";
};

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const decoder = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** Where the head ends in `bytes` (the index after CRLF CRLF), or -1. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

/** Parses a request head (without its final CRLF CRLF); throws a 400 ApiError. */
export function parseHead(bytes: Uint8Array): RequestHead {
  const lines = decoder.decode(bytes).split("\r\n");
  const [method, given, version, ...extra] = lines[0].split(" ");
  const target = originForm(given ?? "");
  if (
    extra.length > 0 || !TOKEN.test(method ?? "") || target === undefined ||
    (version !== "HTTP/1.1" && version !== "HTTP/1.0")
  ) {
    throw new ApiError("invalid", "The request line is not 'METHOD /path HTTP/1.1'");
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) {
      throw new ApiError("invalid", "A request header line is malformed");
    }
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      throw new ApiError("invalid", `The request header ${name} has an invalid value`);
    }
  }
  return { method, target, version, headers };
}

/**
 * The path and query of a request target: origin form ("/v1/host") as it is, absolute
 * form ("http://denovisor/v1/host", what a client sends through a unix-socket proxy)
 * reduced to it; undefined for anything else.
 */
function originForm(target: string): string | undefined {
  if (target.startsWith("/")) return target;
  if (!/^http:\/\//i.test(target)) return undefined;
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return undefined;
  }
}

/** How the body of `head` is framed; refuses ambiguous framing (request smuggling). */
export function bodyFraming(head: RequestHead): BodyFraming {
  const encoding = head.headers.get("transfer-encoding");
  const length = head.headers.get("content-length");
  if (encoding !== null) {
    if (length !== null || encoding.trim().toLowerCase() !== "chunked") {
      throw new ApiError(
        "invalid",
        "Transfer-Encoding must be 'chunked' alone, without Content-Length",
      );
    }
    return { kind: "chunked" };
  }
  if (length === null) return { kind: "none" };
  if (!/^\d{1,15}$/.test(length)) {
    throw new ApiError("invalid", `Content-Length '${length}' is not one whole number`);
  }
  return Number(length) === 0 ? { kind: "none" } : { kind: "length", length: Number(length) };
}

/** Whether the connection stays open after this exchange. */
export function keepAlive(head: RequestHead): boolean {
  const connection = (head.headers.get("connection") ?? "").toLowerCase();
  if (head.version === "HTTP/1.0") {
    return connection.split(",").some((t) => t.trim() === "keep-alive");
  }
  return !connection.split(",").some((t) => t.trim() === "close");
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The bytes of a response head. The caller chose the framing headers. */
export function responseHead(status: number, headers: Headers): Uint8Array {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  return encoder.encode(text + "\r\n");
}

/** A complete, closed-connection answer for errors found before any handler ran. */
export function plainErrorResponse(status: number, code: string, message: string): Uint8Array {
  const body = encoder.encode(JSON.stringify({ error: { code, message } }) + "\n");
  const headers = new Headers({
    "content-type": "application/json",
    "content-length": String(body.byteLength),
    connection: "close",
  });
  const head = responseHead(status, headers);
  const bytes = new Uint8Array(head.byteLength + body.byteLength);
  bytes.set(head);
  bytes.set(body, head.byteLength);
  return bytes;
}

/** One chunk of chunked encoding. */
export function chunk(data: Uint8Array): Uint8Array {
  const size = encoder.encode(`${data.byteLength.toString(16)}\r\n`);
  const bytes = new Uint8Array(size.byteLength + data.byteLength + 2);
  bytes.set(size);
  bytes.set(data, size.byteLength);
  bytes.set([13, 10], size.byteLength + data.byteLength);
  return bytes;
}

/** The last chunk of chunked encoding. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");
