/**
 * The error a domain definition is refused with, and the typed field readers that produce
 * it with a JSON path ("disks[1].volume: expected a string, got 42").
 *
 * @module
 */

/** A definition that is malformed or impossible; `path` names the field ("disks[1].volume"). */
export class DefinitionError extends Error {
  /** JSON path of the offending field; "" for the definition as a whole. */
  readonly path: string;
  /** The message without the path. */
  readonly problem: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(path === "" ? problem : `${path}: ${problem}`, options);
    this.name = "DefinitionError";
    this.path = path;
    this.problem = problem;
  }
}

/** A definition that is fine alone but clashes with another domain's (`other` names it). */
export class DomainConflictError extends DefinitionError {
  /** The other domain's name. */
  readonly other: string;

  constructor(path: string, problem: string, other: string) {
    super(path, problem);
    this.name = "DomainConflictError";
    this.other = other;
  }
}

/** `value` as a message shows it: 42, "web", null, true, an array, an object. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  if (typeof value === "string") {
    const text = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    return text;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  return typeof value;
}

/** The path of `key` inside the object at `path`. */
export function fieldPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** The value at `path` as a plain object whose keys are all in `known`. */
export function readObject(
  value: unknown,
  path: string,
  known: readonly string[],
): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(path, `expected an object, got ${describeValue(value)}`);
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      throw new DefinitionError(
        fieldPath(path, key),
        `unknown field; the known fields here are ${known.join(", ")}`,
      );
    }
  }
  return object;
}

/** The value at `path` as an array (`undefined` when absent). */
export function readArray(value: unknown, path: string): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    throw new DefinitionError(path, `expected an array, got ${describeValue(value)}`);
  }
  return value;
}

/** An optional string field. */
export function readString(object: Record<string, unknown>, key: string, path: string) {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new DefinitionError(
      fieldPath(path, key),
      `expected a string, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** An optional boolean field. */
export function readBoolean(object: Record<string, unknown>, key: string, path: string) {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") {
    throw new DefinitionError(
      fieldPath(path, key),
      `expected true or false, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** An optional string field whose value must be one of `choices`. */
export function readChoice<T extends string>(
  object: Record<string, unknown>,
  key: string,
  path: string,
  choices: readonly T[],
): T | undefined {
  const value = readString(object, key, path);
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new DefinitionError(
      fieldPath(path, key),
      `${describeValue(value)} is not one of ${choices.join(", ")}`,
    );
  }
  return value as T;
}
