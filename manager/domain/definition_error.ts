/**
 * The error a domain definition is refused with, and the typed field readers that produce
 * it with a JSON path ("disks[1].volume: expected a string, got 42").
 *
 * @module
 */

import { describeValue, FieldError, fieldPath, FieldReader } from "../../common/fields.ts";

/**
 * A definition that is malformed or impossible (code `invalid`); `path` names the field
 * ("disks[1].volume") and `problem` is the message without it.
 */
export class DefinitionError extends FieldError {}

/** A definition that is fine alone but clashes with another domain's (`other` names it). */
export class DomainConflictError extends DefinitionError {
  /** The other domain's name. */
  readonly other: string;

  constructor(path: string, problem: string, other: string) {
    super(path, problem);
    this.other = other;
  }
}

/** The readers of definition fields: common/fields.ts's, throwing `DefinitionError`. */
const fields = new FieldReader((path, problem) => new DefinitionError(path, problem));

export { describeValue, fieldPath };

/** The value at `path` as a plain object whose keys are all in `known`. */
export function readObject(
  value: unknown,
  path: string,
  known: readonly string[],
): Record<string, unknown> {
  return fields.object(value, path, known);
}

/** The value at `path` as an array (`undefined` when absent). */
export function readArray(value: unknown, path: string): unknown[] | undefined {
  return fields.array(value, path);
}

/** An optional string field. */
export function readString(
  object: Record<string, unknown>,
  key: string,
  path: string,
): string | undefined {
  return fields.string(object, key, path);
}

/** An optional boolean field. */
export function readBoolean(
  object: Record<string, unknown>,
  key: string,
  path: string,
): boolean | undefined {
  return fields.boolean(object, key, path);
}

/** An optional string field whose value must be one of `choices`. */
export function readChoice<T extends string>(
  object: Record<string, unknown>,
  key: string,
  path: string,
  choices: readonly T[],
): T | undefined {
  return fields.choice(object, key, path, choices);
}
