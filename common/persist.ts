/**
 * The persist seam: every stateful piece of a machine (vCPU, VM-level KVM state, device,
 * transport, queue, rate limiter) saves a plain, versioned, JSON-able state and restores
 * from one. A state comes from a file or a peer, so `restore` treats it as untrusted:
 * every field is checked (type, range, count, address inside guest RAM) and a bad state
 * is refused with a `StateError` that names the field by its path, before anything of
 * the restoring object changes.
 *
 * Binary blobs (KVM structs such as XSAVE areas) travel as base64 strings so the whole
 * state stays JSON; their length is checked on restore.
 *
 * @module
 */

import { DenovisorError } from "./errors.ts";

/** A saved state: plain JSON with the version of its own layout. */
export interface VersionedState {
  /** Layout version of this piece's state; bumped whenever its shape changes. */
  readonly version: number;
}

/** What every stateful piece implements. `S` is its state type. */
export interface Persistable<S extends VersionedState = VersionedState> {
  /** A snapshot of the piece's state. The piece must be quiescent (machine paused). */
  save(): S;
  /**
   * Replaces the piece's state with `state`, which is untrusted: it is validated first
   * and a bad state throws `StateError` and leaves the piece as it was.
   */
  restore(state: unknown): void;
}

/** A saved state was malformed or does not fit the object it is restored into. */
export class StateError extends DenovisorError {
  /** The JSON path of the offending field, e.g. `devices.disk0.queues[1].size`. */
  readonly path: string;

  constructor(path: string, reason: string) {
    super("invalid", `Saved state is invalid: ${path}: ${reason}`);
    this.path = path;
  }
}

/**
 * Reads fields of an untrusted object with their JSON path, throwing `StateError` with
 * that path on anything unexpected. Nested objects get a reader of their own with
 * `object()` / `array()`, so every message names the full path.
 */
export class StateReader {
  readonly #record: Record<string, unknown>;
  /** The path of this object, e.g. `vcpus[0]`. */
  readonly path: string;

  constructor(value: unknown, path = "state") {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new StateError(path, `expected an object, got ${describe(value)}`);
    }
    this.#record = value as Record<string, unknown>;
    this.path = path;
  }

  /** The path of one field of this object. */
  fieldPath(name: string): string {
    return `${this.path}.${name}`;
  }

  /** The raw value of a field (still untrusted). */
  raw(name: string): unknown {
    return this.#record[name];
  }

  /** Whether a field is present (and not undefined). */
  has(name: string): boolean {
    return this.#record[name] !== undefined;
  }

  /** Checks `version` against the versions this code reads; returns it. */
  version(supported: readonly number[]): number {
    const version = this.integer("version", 1, 0xffff);
    if (!supported.includes(version)) {
      throw new StateError(
        this.fieldPath("version"),
        `version ${version} is not supported (this build reads ${supported.join(", ")})`,
      );
    }
    return version;
  }

  /** An integer in `min..max` (inclusive), as a safe JS number. */
  integer(name: string, min: number, max: number): number {
    const value = this.#record[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new StateError(
        this.fieldPath(name),
        `expected an integer in ${min}..${max}, got ${describe(value)}`,
      );
    }
    return value;
  }

  /**
   * A 64-bit unsigned integer saved as a decimal or 0x-prefixed string (JSON numbers
   * cannot carry 64 bits), at most `max`.
   */
  u64(name: string, max = 0xffff_ffff_ffff_ffffn): bigint {
    return parseU64(this.#record[name], this.fieldPath(name), max);
  }

  /** A boolean. */
  boolean(name: string): boolean {
    const value = this.#record[name];
    if (typeof value !== "boolean") {
      throw new StateError(this.fieldPath(name), `expected a boolean, got ${describe(value)}`);
    }
    return value;
  }

  /** A string of at most `maxLength` characters, optionally one of `allowed`. */
  string<T extends string = string>(name: string, maxLength = 4096, allowed?: readonly T[]): T {
    const value = this.#record[name];
    if (typeof value !== "string" || value.length > maxLength) {
      throw new StateError(
        this.fieldPath(name),
        `expected a string of at most ${maxLength} characters, got ${describe(value)}`,
      );
    }
    if (allowed && !(allowed as readonly string[]).includes(value)) {
      throw new StateError(
        this.fieldPath(name),
        `expected one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`,
      );
    }
    return value as T;
  }

  /** Bytes saved as base64, with an exact length or a maximum. */
  bytes(name: string, length: { exact?: number; max?: number }): Uint8Array {
    const path = this.fieldPath(name);
    const value = this.#record[name];
    const max = length.exact ?? length.max ?? 1 << 24;
    if (typeof value !== "string" || value.length > Math.ceil(max / 3) * 4 + 4) {
      throw new StateError(path, `expected base64 of at most ${max} bytes, got ${describe(value)}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(value);
    } catch {
      throw new StateError(path, "is not valid base64");
    }
    if (length.exact !== undefined && bytes.length !== length.exact) {
      throw new StateError(path, `expected ${length.exact} bytes, got ${bytes.length}`);
    }
    if (bytes.length > max) {
      throw new StateError(path, `expected at most ${max} bytes, got ${bytes.length}`);
    }
    return bytes;
  }

  /** A nested object, read with its own path. */
  object(name: string): StateReader {
    return new StateReader(this.#record[name], this.fieldPath(name));
  }

  /** An array of at most `maxLength` entries; `read` gets each entry and its path. */
  array<T>(name: string, maxLength: number, read: (entry: unknown, path: string) => T): T[] {
    const path = this.fieldPath(name);
    const value = this.#record[name];
    if (!Array.isArray(value)) {
      throw new StateError(path, `expected an array, got ${describe(value)}`);
    }
    if (value.length > maxLength) {
      throw new StateError(path, `expected at most ${maxLength} entries, got ${value.length}`);
    }
    return value.map((entry, index) => read(entry, `${path}[${index}]`));
  }

  /** An array of integers in `min..max`, with an exact length or a maximum. */
  integers(
    name: string,
    min: number,
    max: number,
    length: { exact?: number; max?: number },
  ): number[] {
    const path = this.fieldPath(name);
    const values = this.array(name, length.exact ?? length.max ?? 1 << 20, (entry, entryPath) => {
      if (typeof entry !== "number" || !Number.isSafeInteger(entry) || entry < min || entry > max) {
        throw new StateError(
          entryPath,
          `expected an integer in ${min}..${max}, got ${describe(entry)}`,
        );
      }
      return entry;
    });
    if (length.exact !== undefined && values.length !== length.exact) {
      throw new StateError(path, `expected ${length.exact} entries, got ${values.length}`);
    }
    return values;
  }
}

/** Parses a u64 saved as a string (decimal or 0x hex). */
export function parseU64(value: unknown, path: string, max = 0xffff_ffff_ffff_ffffn): bigint {
  if (typeof value !== "string" || !/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(value)) {
    throw new StateError(
      path,
      `expected a 64-bit unsigned integer as a string, got ${describe(value)}`,
    );
  }
  const parsed = BigInt(value);
  if (parsed > max) throw new StateError(path, `${value} is above ${max}`);
  return parsed;
}

/** Saves a u64 in the form `parseU64` reads. */
export function formatU64(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** Base64 of bytes (for blobs inside a JSON state). */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let offset = 0; offset < bytes.length; offset += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a base64 string; throws on malformed input. */
export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length > 40 ? "a long string" : JSON.stringify(value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
