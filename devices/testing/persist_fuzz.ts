/**
 * A fuzzer for `restore()`: takes a good saved state, derives malformed ones from it
 * (wrong types, missing fields, bit flips, out-of-range numbers, truncated and grown
 * arrays, bad strings, other versions) and checks, for each, that `restore` either
 * accepts it or throws `StateError` and leaves the object as it was (`save()` before
 * equals `save()` after). Every device's persist test uses it instead of its own copy.
 *
 * A mutation may happen to yield a valid state (a flipped bit in a free register):
 * restore may accept that, and the fuzzer then restores the good state again before the
 * next mutation. Structural mutations (a field's type changed or the field removed, the
 * version changed) must always be refused unless the path is listed as lenient.
 *
 * @module
 */

import assert from "node:assert/strict";
import { StateError } from "../../common/persist.ts";

/** What the fuzzer drives: any `Persistable`. */
export interface FuzzTarget {
  save(): unknown;
  restore(state: unknown): void;
}

/** Options of `fuzzRestore`. */
export interface FuzzOptions {
  /** Random mutations on top of the systematic ones (default 300). */
  readonly iterations?: number;
  /** Seed of the deterministic generator (default 1). */
  readonly seed?: number;
  /**
   * Paths (as `fuzzRestore` prints them, e.g. `state.queues[0].ready`) whose type or
   * presence may change without a refusal, e.g. a nullable field.
   */
  readonly lenient?: readonly string[];
  /** Extra hand-made bad states that must be refused. */
  readonly mustRefuse?: readonly unknown[];
}

/** What a run did, for tests that want to assert it exercised something. */
export interface FuzzReport {
  readonly tried: number;
  readonly refused: number;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Mutation {
  readonly description: string;
  readonly state: Json;
  readonly mustRefuse: boolean;
}

/**
 * Fuzzes `target.restore` from `good` (a state `target` accepts). Throws an assertion
 * error naming the mutation when restore throws anything but `StateError`, changes the
 * object while refusing, or accepts a mutation that must be refused.
 */
export function fuzzRestore(
  target: FuzzTarget,
  good: unknown,
  options: FuzzOptions = {},
): FuzzReport {
  const base = clone(good as Json);
  const random = generator(options.seed ?? 1);
  const lenient = new Set(options.lenient ?? []);
  const mutations: Mutation[] = [...systematic(base, lenient)];
  for (let i = 0; i < (options.iterations ?? 300); i++) {
    mutations.push(randomMutation(base, random));
  }
  for (const [i, state] of (options.mustRefuse ?? []).entries()) {
    mutations.push({
      description: `hand-made bad state ${i}`,
      state: state as Json,
      mustRefuse: true,
    });
  }
  target.restore(clone(base));
  let refused = 0;
  for (const mutation of mutations) {
    const before = JSON.stringify(target.save());
    try {
      target.restore(mutation.state);
    } catch (error) {
      if (!(error instanceof StateError)) {
        assert.fail(`${mutation.description}: restore threw ${String(error)}, not a StateError`);
      }
      refused++;
      assert.equal(
        JSON.stringify(target.save()),
        before,
        `${mutation.description}: a refused restore changed the object`,
      );
      continue;
    }
    assert.ok(!mutation.mustRefuse, `${mutation.description}: restore accepted it`);
    target.restore(clone(base)); // back to the good state for the next mutation
  }
  return { tried: mutations.length, refused };
}

/** A JSON round trip: what a state file gives back. */
export function viaJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

function clone(value: Json): Json {
  return JSON.parse(JSON.stringify(value));
}

/** Every leaf and container with its path. */
function paths(value: Json, path = "state"): Array<{ path: string; keys: (string | number)[] }> {
  const out: Array<{ path: string; keys: (string | number)[] }> = [];
  const walk = (node: Json, nodePath: string, keys: (string | number)[]) => {
    out.push({ path: nodePath, keys });
    if (Array.isArray(node)) {
      node.forEach((child, i) => walk(child, `${nodePath}[${i}]`, [...keys, i]));
    } else if (node !== null && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        walk(child, `${nodePath}.${key}`, [...keys, key]);
      }
    }
  };
  walk(value, path, []);
  return out;
}

function get(root: Json, keys: (string | number)[]): Json {
  let node: Json = root;
  for (const key of keys) node = (node as Record<string | number, Json>)[key];
  return node;
}

/** `root` with the node at `keys` replaced (or deleted when `replacement` is undefined). */
function edit(root: Json, keys: (string | number)[], replacement: Json | undefined): Json {
  if (keys.length === 0) return replacement === undefined ? null : replacement;
  const copy = clone(root);
  const parent = get(copy, keys.slice(0, -1)) as Record<string | number, Json>;
  const last = keys[keys.length - 1];
  if (replacement === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    parent[last] = replacement;
  }
  return copy;
}

/** Wrong types, missing fields, versions, truncations: each node once. */
function* systematic(base: Json, lenient: Set<string>): Generator<Mutation> {
  for (const { path, keys } of paths(base)) {
    const node = get(base, keys);
    const strict = !lenient.has(path);
    const inArray = typeof keys[keys.length - 1] === "number";
    const wrongTypes: Json[] = typeof node === "string"
      ? [7, null]
      : typeof node === "number"
      ? ["7", null, true]
      : typeof node === "boolean"
      ? [1, "true"]
      : node === null
      ? [{ x: 1 }]
      : Array.isArray(node)
      ? [{}, "[]"]
      : [[], 0];
    for (const wrong of wrongTypes) {
      yield {
        description: `${path} replaced by ${JSON.stringify(wrong)}`,
        state: edit(base, keys, wrong),
        mustRefuse: strict && keys.length > 0,
      };
    }
    if (keys.length > 0 && !inArray) {
      yield {
        description: `${path} removed`,
        state: edit(base, keys, undefined),
        mustRefuse: strict,
      };
    }
    if (Array.isArray(node) && node.length > 0) {
      yield {
        description: `${path} truncated`,
        state: edit(base, keys, node.slice(0, -1)),
        mustRefuse: false,
      };
      yield {
        description: `${path} grown`,
        state: edit(base, keys, [...node, ...node, node[0]]),
        mustRefuse: false,
      };
    }
    if (typeof node === "number") {
      for (const value of [-1, 0.5, 2 ** 53, node + 1, -node - 1, 1e300]) {
        yield {
          description: `${path} = ${value}`,
          state: edit(base, keys, value),
          mustRefuse: false,
        };
      }
      if (path.endsWith(".version")) {
        for (const version of [0, node + 1, 65535]) {
          yield {
            description: `${path} = ${version}`,
            state: edit(base, keys, version),
            mustRefuse: true,
          };
        }
      }
    }
    if (typeof node === "string") {
      for (const value of ["", node.slice(0, -1), `${node}x`, "0x", "!!!", "0x1ffffffffffffffff"]) {
        yield {
          description: `${path} = ${JSON.stringify(value)}`,
          state: edit(base, keys, value),
          mustRefuse: false,
        };
      }
    }
  }
}

/** A random bit flip or boundary value on a random number, or a random string edit. */
function randomMutation(base: Json, random: () => number): Mutation {
  const candidates = paths(base).filter(({ keys }) => {
    const node = get(base, keys);
    return typeof node === "number" || typeof node === "string";
  });
  if (candidates.length === 0) return { description: "no-op", state: base, mustRefuse: false };
  const { path, keys } = candidates[Math.floor(random() * candidates.length)];
  const node = get(base, keys);
  if (typeof node === "number") {
    const bit = Math.floor(random() * 40);
    const flipped = Number.isSafeInteger(node) && node >= 0
      ? Number(BigInt(node) ^ (1n << BigInt(bit)))
      : node + 2 ** bit;
    return {
      description: `${path} bit ${bit} flipped`,
      state: edit(base, keys, flipped),
      mustRefuse: false,
    };
  }
  const text = node as string;
  const at = Math.floor(random() * (text.length + 1));
  const char = String.fromCharCode(32 + Math.floor(random() * 95));
  const edited = text.slice(0, at) + char + text.slice(at + 1);
  return {
    description: `${path} edited at ${at}`,
    state: edit(base, keys, edited),
    mustRefuse: false,
  };
}

/** A small deterministic generator (mulberry32), so failures reproduce. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The round trip every persist test starts with: `original.save()` through JSON, restored
 * into `fresh` (built from the same config), saves the same again. Returns the state.
 */
export function assertRoundTrip<S>(original: { save(): S }, fresh: FuzzTarget): S {
  const state = viaJson(original.save());
  fresh.restore(state);
  assert.deepEqual(viaJson(fresh.save()), state, "save() after restore() differs");
  return state;
}
