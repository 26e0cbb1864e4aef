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
