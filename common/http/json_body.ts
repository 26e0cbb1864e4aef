/**
 * Request bodies as untrusted input: JSON only (a `text/plain` or form body is refused
 * with 415, so that a browser's simple cross-origin POST can never be mistaken for an
 * API call), at most `MAX_BODY_BYTES` (413 beyond, counted while reading so a huge body
 * is never held in memory), and no duplicate keys (refused as xl.cfg refuses them,
 * instead of JSON.parse's silent last-wins).
 *
 * @module
 */

import { ApiError } from "./api_error.ts";
import { propertyKeys, type Schema, type Static } from "../schema.ts";
import { checkSchema } from "../schema_check.ts";

/**
 * The largest request body accepted: 1 MiB. The biggest legitimate body is a domain
 * definition with many disks and NICs, a few KiB; anything larger is a mistake or an
 * attack on the daemon's memory.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Options of `readJsonBody`. */
export interface JsonBodyOptions {
  /** The largest body accepted, in bytes (default `MAX_BODY_BYTES`). */
  maxBytes?: number;
}

/** The request body as JSON (`{}` when empty), or an ApiError that says why it is not. */
export async function readJsonBody(
  request: Request,
  options: JsonBodyOptions = {},
): Promise<unknown> {
  if (request.headers.get("content-length") !== "0") checkContentType(request);
  const text = await readBodyText(request, options.maxBytes ?? MAX_BODY_BYTES);
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(
      "invalid",
      `The request body is not valid JSON: ${(error as Error).message}`,
    );
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new ApiError(
      "invalid",
      `${duplicate}: the key appears twice in one object; give each key once`,
    );
  }
  return value;
}

/** The body as text, refused with 413 once it passes `maxBytes`. */
export async function readBodyText(request: Request, maxBytes = MAX_BODY_BYTES): Promise<string> {
  const tooLarge = () =>
    new ApiError(
      "too_large",
      `The request body is larger than ${maxBytes} bytes; API bodies are small JSON documents`,
    );
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError("invalid", "The request body is not valid UTF-8; send JSON text");
  }
}

/** A body without a content type is taken as JSON; any other type than JSON is refused. */
function checkContentType(request: Request): void {
  if (request.body === null) return;
  const type = request.headers.get("content-type");
  if (type === null) return;
  const essence = type.split(";")[0].trim().toLowerCase();
  if (essence === "application/json" || /^application\/[a-z0-9.+-]*\+json$/.test(essence)) {
    return;
  }
  throw new ApiError(
    "invalid",
    `Content-Type ${essence} is not accepted; send the body as application/json`,
    { status: 415 },
  );
}

/**
 * The JSON path of the first key that appears twice in one object of `text`, which must
 * already be valid JSON (so the scan need not report syntax errors).
 */
export function firstDuplicateKey(text: string): string | undefined {
  // One frame per open container: the keys seen for objects, the index for arrays.
  const stack: { keys?: Set<string>; index: number; path: string }[] = [];
  let pendingKey: string | undefined;
  const childPath = () => {
    const top = stack.at(-1);
    if (top === undefined) return "";
    if (top.keys === undefined) return `${top.path}[${top.index}]`;
    const key = pendingKey ?? "";
    return /^[A-Za-z_$][\w$]*$/.test(key)
      ? (top.path === "" ? key : `${top.path}.${key}`)
      : `${top.path}[${JSON.stringify(key)}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") {
      stack.push({ keys: c === "{" ? new Set() : undefined, index: 0, path: childPath() });
      pendingKey = undefined;
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      const top = stack.at(-1);
      if (top !== undefined && top.keys === undefined) top.index++;
      pendingKey = undefined;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const raw = text.slice(i, end + 1);
      i = end;
      let next = end + 1;
      while (/\s/.test(text[next] ?? "")) next++;
      const top = stack.at(-1);
      if (text[next] === ":" && top?.keys !== undefined) {
        const key = JSON.parse(raw) as string;
        pendingKey = key;
        if (top.keys.has(key)) return childPath();
        top.keys.add(key);
      }
    }
  }
  return undefined;
}

/**
 * A request body checked to be a JSON object with only `allowed` keys and every key of
 * `required`; a refusal is a 400 that names the field. The daemon's own routes use
 * `parseRequest` with their schema instead; this is left for the farm's routes.
 */
export function requestObject(
  body: unknown,
  allowed: readonly string[],
  required: readonly string[] = [],
): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(
      "invalid",
      `The request body must be a JSON object with ${allowed.join(", ")}`,
    );
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new ApiError(
        "invalid",
        `${key}: unknown field; known fields are ${allowed.join(", ")}`,
      );
    }
  }
  for (const key of required) {
    if (!(key in body)) throw new ApiError("invalid", `${key}: missing`);
  }
  return body as Record<string, unknown>;
}

/**
 * A request body checked against its schema (manager/api_schema.ts): a JSON object of
 * the right shape, or a 400 naming every bad field, one per line. What the schema cannot
 * see (paths that exist, names that are free) is the route's to check.
 */
export function parseRequest<S extends Schema>(schema: S, body: unknown): Static<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(
      "invalid",
      `The request body must be a JSON object with ${propertyKeys(schema).join(", ")}`,
    );
  }
  const problems = checkSchema(schema, body);
  if (problems.length > 0) {
    throw new ApiError(
      "invalid",
      problems.map(({ path, problem }) => path === "" ? problem : `${path}: ${problem}`)
        .join("\n"),
    );
  }
  return body as Static<S>;
}
