/**
 * Field readers that device states share on top of `StateReader` (common/persist.ts):
 * counter records, non-integer numbers, nullable fields and composed restores.
 *
 * @module
 */

import { StateError, type StateReader } from "../common/persist.ts";

/** Largest counter value a state may carry (a safe integer). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/**
 * Reads `name` as an object holding exactly the counters `keys`, each a non-negative safe
 * integer. Returns them as a record with those keys.
 */
export function readCounters<K extends string>(
  reader: StateReader,
  name: string,
  keys: readonly K[],
): Record<K, number> {
  const counters = reader.object(name);
  const out = {} as Record<K, number>;
  for (const key of keys) out[key] = counters.integer(key, 0, MAX_COUNTER);
  return out;
}

/** A finite number (not necessarily an integer) in `min..max`. */
export function readNumber(reader: StateReader, name: string, min: number, max: number): number {
  const value = reader.raw(name);
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new StateError(
      reader.fieldPath(name),
      `expected a number in ${min}..${max}, got ${JSON.stringify(value) ?? String(value)}`,
    );
  }
  return value;
}

/** `read(name)` when the field holds a value, undefined when it holds null (it must exist). */
export function readNullable<T>(
  reader: StateReader,
  name: string,
  read: (name: string) => T,
): T | undefined {
  const value = reader.raw(name);
  if (value === null) return undefined;
  if (value === undefined) throw new StateError(reader.fieldPath(name), "is missing (use null)");
  return read(name);
}

/**
 * A restore split in two: `prepare` validates everything and returns `commit`, which
 * cannot fail. Composite pieces (a virtio-pci function: config space, transport, device)
 * prepare all their parts before committing any, so a refusal changes nothing.
 */
export interface PreparedRestore {
  (): void;
}

/** Something whose restore can be prepared at a path of a larger state. */
export interface RestorePreparer {
  prepareRestore(state: unknown, path: string): PreparedRestore;
}

/** Reads a nested state that a part prepares itself, with that part's path. */
export function prepareNested(
  reader: StateReader,
  name: string,
  part: RestorePreparer,
): PreparedRestore {
  return part.prepareRestore(reader.raw(name), reader.fieldPath(name));
}
