/**
 * The JSON of etcd 3.4's gRPC gateway: base64 keys and values, int64s as strings,
 * enums by name, errors as `{"error", "message", "code"}` with gRPC codes; and the
 * conversions to and from the client's types (etcd_types.ts).
 *
 * @module
 */

import { type Compare, EtcdError, type KeyValue, type Operation } from "./etcd_types.ts";

const GRPC_INVALID_ARGUMENT = 3;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

export interface RawKv {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export interface RawEvent {
  type?: string;
  kv: RawKv;
  prev_kv?: RawKv;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function b64(text: string): string {
  return bytesToBase64(encoder.encode(text));
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function fromB64(text: string | undefined): string {
  if (text === undefined) return "";
  return decoder.decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
}

/** The range end that selects every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i]++;
      return bytesToBase64(end);
    }
  }
  return bytesToBase64(new Uint8Array([0])); // Every key.
}

export function num(value: unknown): number {
  return value === undefined ? 0 : Number(value);
}

export function keyValue(raw: RawKv): KeyValue {
  return {
    key: fromB64(raw.key),
    value: fromB64(raw.value),
    createRevision: num(raw.create_revision),
    modRevision: num(raw.mod_revision),
    version: num(raw.version),
    lease: raw.lease ?? "0",
  };
}

export function putRequest(key: string, value: string, lease?: string) {
  return { key: b64(key), value: b64(value), ...(lease && lease !== "0" ? { lease } : {}) };
}

export function rawCompare(compare: Compare) {
  const base = { key: b64(compare.key), result: compare.result.toUpperCase() };
  switch (compare.target) {
    case "create":
      return { ...base, target: "CREATE", create_revision: String(compare.createRevision) };
    case "mod":
      return { ...base, target: "MOD", mod_revision: String(compare.modRevision) };
    case "version":
      return { ...base, target: "VERSION", version: String(compare.version) };
    case "value":
      return { ...base, target: "VALUE", value: b64(compare.value) };
  }
}

export function rawOperation(operation: Operation) {
  if ("put" in operation) {
    const { key, value, lease } = operation.put;
    return { request_put: putRequest(key, value, lease) };
  }
  if ("deleteRange" in operation) {
    const { key, prefix } = operation.deleteRange;
    return {
      request_delete_range: { key: b64(key), ...(prefix ? { range_end: prefixEnd(key) } : {}) },
    };
  }
  const { key, prefix } = operation.range;
  return { request_range: { key: b64(key), ...(prefix ? { range_end: prefixEnd(key) } : {}) } };
}

export async function answerError(response: Response, path: string): Promise<EtcdError> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text);
    return grpcError(typeof parsed.error === "object" ? parsed.error : parsed, path);
  } catch {
    return new EtcdError(
      "internal",
      `etcd answered ${path} with HTTP ${response.status}: ${text.trim()}`,
    );
  }
}

export function grpcError(
  error: { code?: number; message?: string; error?: string },
  path: string,
) {
  const message = error.message ?? error.error ?? JSON.stringify(error);
  // etcd answers an unauthenticated request with InvalidArgument "user name is empty".
  if (/user name is empty|invalid auth token|permission denied/.test(message)) {
    return new EtcdError(
      "forbidden",
      `etcd refused ${path}: ${message}; give the farm an etcd user with the rights on its prefix`,
      { grpcCode: error.code },
    );
  }
  const code = error.code === GRPC_INVALID_ARGUMENT
    ? "invalid"
    : error.code === GRPC_PERMISSION_DENIED || error.code === GRPC_UNAUTHENTICATED
    ? "forbidden"
    : error.code === 14 // UNAVAILABLE (no leader, stopping)
    ? "unavailable"
    : "internal";
  return new EtcdError(code, `etcd refused ${path}: ${message}`, { grpcCode: error.code });
}
