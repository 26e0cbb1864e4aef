/**
 * Reading untrusted JSON objects (domain definitions, pool definitions, request bodies,
 * configs) field by field, each refusal naming the field by its JSON path:
 * `disks[1].volume: expected a string, got 42`. What to throw is the caller's: a
 * `FieldReader` is made with the error factory of its edge (a domain definition throws
 * `DefinitionError`), so messages read the same everywhere and callers still catch their
 * own class. Saved machine state has a stricter flavour, `StateReader` in persist.ts.
 *
 * @module
 */

import { DenovisorError } from "./errors.ts";

/** A field of an untrusted object was missing, of the wrong type or out of range. */
export class FieldError extends DenovisorError {
  /** JSON path of the offending field; "" for the object as a whole. */
  readonly path: string;
  /** The message without the path. */
  readonly problem: string;

  constructor(path: string, problem: string, options?: ErrorOptions) {
    super("invalid", path === "" ? problem : `${path}: ${problem}`, options);
    this.path = path;
    this.problem = problem;
  }
}

/** Makes the error for a bad field at `path` (e.g. a `FieldError` subclass). */
export type FieldErrorFactory = (path: string, problem: string) => Error;

/** `value` as a message shows it: 42, "web", null, true, an array, an object, nothing. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  return typeof value;
}

/** The path of `key` inside the object at `path`: `disks[1]`, `boot.kernel`, `name`. */
export function fieldPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/**
 * Typed reads of fields of untrusted objects. Optional fields read as `undefined` when
 * absent; every other mismatch throws the factory's error with the field's path.
 */
export class FieldReader {
  readonly #fail: FieldErrorFactory;

  constructor(fail: FieldErrorFactory = (path, problem) => new FieldError(path, problem)) {
    this.#fail = fail;
  }

  /** The error for `problem` at `path`, from this reader's factory. */
  error(path: string, problem: string): Error {
    return this.#fail(path, problem);
  }

  /** The value at `path` as a plain object whose keys are all in `known`. */
  object(value: unknown, path: string, known: readonly string[]): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw this.#fail(path, `expected an object, got ${describeValue(value)}`);
    }
    const object = value as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      if (!known.includes(key)) {
        throw this.#fail(
          fieldPath(path, key),
          `unknown field; the known fields here are ${known.join(", ")}`,
        );
      }
    }
    return object;
  }

  /** The value at `path` as an array (`undefined` when absent). */
  array(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      throw this.#fail(path, `expected an array, got ${describeValue(value)}`);
    }
    return value;
  }

  /** An optional string field. */
  string(object: Record<string, unknown>, key: string, path: string): string | undefined {
    const value = object[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string") {
      throw this.#fail(fieldPath(path, key), `expected a string, got ${describeValue(value)}`);
    }
    return value;
  }

  /** An optional boolean field. */
  boolean(object: Record<string, unknown>, key: string, path: string): boolean | undefined {
    const value = object[key];
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      throw this.#fail(fieldPath(path, key), `expected true or false, got ${describeValue(value)}`);
    }
    return value;
  }

  /** An optional whole number field in `min..max`. */
  integer(
    object: Record<string, unknown>,
    key: string,
    path: string,
    min: number,
    max: number,
  ): number | undefined {
    const value = object[key];
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      throw this.#fail(
        fieldPath(path, key),
        `expected a whole number, got ${describeValue(value)}`,
      );
    }
    if (value < min || value > max) {
      throw this.#fail(fieldPath(path, key), `${value} is not between ${min} and ${max}`);
    }
    return value;
  }

  /** An optional string field whose value must be one of `choices`. */
  choice<T extends string>(
    object: Record<string, unknown>,
    key: string,
    path: string,
    choices: readonly T[],
  ): T | undefined {
    const value = this.string(object, key, path);
    if (value === undefined) return undefined;
    if (!(choices as readonly string[]).includes(value)) {
      throw this.#fail(
        fieldPath(path, key),
        `${describeValue(value)} is not one of ${choices.join(", ")}`,
      );
    }
    return value as T;
  }
}
