/**
 * Every mistake of a definition at once, not only the first. The field readers stop at
 * the first bad field (definition.ts reads top to bottom); `validateCollecting` then takes
 * that field out of a copy and validates again, until the copy passes or nothing more can
 * be taken out. A bad field is deleted (every field but `name` and `boot` is optional), a
 * bad element of an array is taken out of the array (later paths are mapped back to the
 * indices of the input), a bad name is replaced by a placeholder. It stops where going on
 * could report a mistake that is only the consequence of an earlier one: a bad `boot`
 * beside `cdroms` (which depend on the boot kind), or a problem with the whole object.
 *
 * The error's first line is the first problem exactly as before ("path: problem"); each
 * further problem is one more line of the same form.
 *
 * @module
 */

import { DefinitionError, DomainConflictError } from "./definition_error.ts";
import type { SchemaProblem } from "../../common/schema_check.ts";

/** One mistake: the field's JSON path and what is wrong with it. */
export interface DefinitionProblem {
  path: string;
  problem: string;
}

/** More than one mistake; `path` and `problem` are the first one's. */
export class DefinitionProblems extends DefinitionError {
  /** Every problem, in the order the fields are read. */
  readonly problems: DefinitionProblem[];

  constructor(problems: DefinitionProblem[]) {
    super(problems[0].path, problems[0].problem);
    this.problems = problems;
    this.message = problems.map(formatProblem).join("\n");
  }
}

/** The most problems reported at once. */
const MAX_PROBLEMS = 20;
/** Stands in for a bad name while the other fields are checked. */
const PLACEHOLDER_NAME = "unnamed";

/**
 * Runs `validate` on `input`; when it throws a DefinitionError, finds the other mistakes
 * as described above and throws one error naming them all (the first alone when it is
 * the only one).
 */
export function validateCollecting<T>(input: unknown, validate: (input: unknown) => T): T {
  try {
    return validate(input);
  } catch (first) {
    if (!(first instanceof DefinitionError) || first instanceof DomainConflictError) throw first;
    if (!isPlainObject(input)) throw first;
    const problems = collect(structuredClone(input), first, validate);
    if (problems.length <= 1) throw first;
    throw new DefinitionProblems(problems);
  }
}

/**
 * Like `validateCollecting`, after the schema's structural check found `structural`: the
 * fields those problems name are taken out of a copy (as above), the copy is validated for
 * what the schema cannot see, and every problem is reported in the order of `fields`
 * (the definition's properties; unknown fields first), each array's elements in order.
 */
export function validateAfterSchema<T>(
  input: unknown,
  structural: SchemaProblem[],
  fields: readonly string[],
  validate: (input: unknown) => T,
): T {
  if (structural.length === 0) return validateCollecting(input, validate);
  const problems: DefinitionProblem[] = [...structural];
  const indices = new Map<string, number[]>();
  if (isPlainObject(input)) {
    const working = structuredClone(input);
    if (takeOutAll(working, structural, indices)) {
      try {
        validate(working);
      } catch (first) {
        if (!(first instanceof DefinitionError) || first instanceof DomainConflictError) {
          throw first;
        }
        for (const each of collect(working, first, validate)) {
          problems.push({ path: inputPath(each.path, indices), problem: each.problem });
        }
      }
    }
  }
  const rank = (path: string) => {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?/.exec(path);
    return [fields.indexOf(match?.[1] ?? ""), Number(match?.[2] ?? -1)];
  };
  const sorted = problems
    .map((problem, order) => ({ problem, order, rank: rank(problem.path) }))
    .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.order - b.order)
    .map((each) => each.problem)
    .slice(0, MAX_PROBLEMS);
  if (sorted.length === 1) throw new DefinitionError(sorted[0].path, sorted[0].problem);
  throw new DefinitionProblems(sorted);
}

/**
 * Takes every field a structural problem names out of `working` (bad array elements all
 * at once, their input indices kept in `indices`); false when the rest cannot be judged
 * alone (a bad boot beside cdroms, a problem with the whole object).
 */
function takeOutAll(
  working: Record<string, unknown>,
  problems: SchemaProblem[],
  indices: Map<string, number[]>,
): boolean {
  const elements = new Map<string, Set<number>>();
  for (const { path } of problems) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?/.exec(path);
    if (!match) return false;
    const [, key, index] = match;
    if (key === "name") working.name = PLACEHOLDER_NAME;
    else if (key === "boot") {
      if ("cdroms" in working) return false;
      working.boot = { demo: true };
    } else if (index !== undefined && Array.isArray(working[key])) {
      elements.set(key, (elements.get(key) ?? new Set()).add(Number(index)));
    } else delete working[key];
  }
  for (const [key, bad] of elements) {
    const value = working[key];
    if (!Array.isArray(value)) continue;
    const kept = value.map((_, index) => index).filter((index) => !bad.has(index));
    working[key] = kept.map((index) => value[index]);
    indices.set(key, kept);
  }
  return true;
}

function collect(
  working: Record<string, unknown>,
  first: DefinitionError,
  validate: (input: unknown) => unknown,
): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [{ path: first.path, problem: first.problem }];
  // For each array taken elements out of: the input's index of each element left.
  const indices = new Map<string, number[]>();
  const replaced = new Set<string>();
  let error = first;
  while (problems.length < MAX_PROBLEMS) {
    if (!takeOut(working, error.path, indices, replaced)) break;
    try {
      validate(working);
      break;
    } catch (next) {
      if (!(next instanceof DefinitionError) || next instanceof DomainConflictError) break;
      const path = inputPath(next.path, indices);
      if (problems.some((each) => each.path === path && each.problem === next.problem)) break;
      problems.push({ path, problem: next.problem });
      error = next;
    }
  }
  return problems;
}

/** Removes the field at `path` (a path into `working`); false when it cannot. */
function takeOut(
  working: Record<string, unknown>,
  path: string,
  indices: Map<string, number[]>,
  replaced: Set<string>,
): boolean {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?/.exec(path);
  if (!match) return false;
  const [, key, index] = match;
  if (key === "name") {
    if (replaced.has(key)) return false;
    replaced.add(key);
    working.name = PLACEHOLDER_NAME;
    return true;
  }
  if (key === "boot") {
    if (replaced.has(key) || "cdroms" in working) return false;
    replaced.add(key);
    working.boot = { demo: true };
    return true;
  }
  const value = working[key];
  if (index !== undefined && Array.isArray(value) && Number(index) < value.length) {
    const map = indices.get(key) ?? value.map((_, each) => each);
    value.splice(Number(index), 1);
    map.splice(Number(index), 1);
    indices.set(key, map);
    return true;
  }
  if (!(key in working)) return false;
  delete working[key];
  return true;
}

/** `path` with the indices of arrays that lost elements mapped back to the input's. */
function inputPath(path: string, indices: Map<string, number[]>): string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]/.exec(path);
  if (!match) return path;
  const map = indices.get(match[1]);
  const original = map?.[Number(match[2])];
  if (original === undefined) return path;
  return `${match[1]}[${original}]${path.slice(match[0].length)}`;
}

function formatProblem(problem: DefinitionProblem): string {
  return problem.path === "" ? problem.problem : `${problem.path}: ${problem.problem}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
