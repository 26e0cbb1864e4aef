/**
 * Validation of untrusted JSON against a schema of schema.ts: every problem at once, each
 * with its JSON path and in the words common/fields.ts's readers use, so a refusal reads
 * the same whether a schema or hand-written code found it. Only structure is checked
 * here (types, required and unknown properties, choices, ranges, patterns, lengths);
 * what needs more than the value (host memory, unicast MACs, clashes between domains)
 * stays in the code that reads the value.
 *
 * @module
 */

import { describeValue, fieldPath } from "./fields.ts";
import { HINTS, type Hints, type Schema } from "./schema.ts";

/** One structural problem: the field's JSON path and what is wrong with it. */
export interface SchemaProblem {
  path: string;
  problem: string;
}

/** Every structural problem of `value` against `schema`, in the order of its properties. */
export function checkSchema(schema: Schema, value: unknown, path = ""): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  check(schema, value, path, problems);
  return problems;
}

function check(schema: Schema, value: unknown, path: string, problems: SchemaProblem[]): void {
  const hints: Hints = schema[HINTS] ?? {};
  const fail = (problem: string): void => {
    problems.push({ path, problem });
  };
  const expected = (what: string): void =>
    fail(`expected ${hints.expected ?? what}, got ${describeValue(value)}`);
  const invalid = (fallback: string): void =>
    fail(`${describeValue(value)} ${hints.invalid ?? fallback}`);
  if (schema.oneOf !== undefined) return checkUnion(schema, value, path, problems);
  if ("const" in schema) {
    if (value !== schema.const) {
      fail(
        `expected ${JSON.stringify(schema.const)}, got ${describeValue(value)}` +
          (hints.invalid === undefined ? "" : `; ${hints.invalid}`),
      );
    }
    return;
  }
  switch (schema.type) {
    case "string": {
      if (typeof value !== "string") return expected("a string");
      const choices = schema.enum as string[] | undefined;
      if (choices !== undefined && !choices.includes(value)) {
        return invalid(`is not one of ${choices.join(", ")}`);
      }
      const { pattern, minLength, maxLength } = schema as {
        pattern?: string;
        minLength?: number;
        maxLength?: number;
      };
      if (maxLength !== undefined && value.length > maxLength) {
        return invalid(`is longer than ${maxLength} characters`);
      }
      if (minLength !== undefined && value.length < minLength) {
        return invalid(`is shorter than ${minLength} characters`);
      }
      if (pattern !== undefined && !new RegExp(pattern, "u").test(value)) {
        return invalid(`does not match ${pattern}`);
      }
      return;
    }
    case "integer":
    case "number": {
      const whole = schema.type === "integer";
      if (
        typeof value !== "number" || !Number.isFinite(value) ||
        (whole && !Number.isSafeInteger(value))
      ) {
        return expected(whole ? "a whole number" : "a number");
      }
      const { minimum, maximum } = schema as { minimum?: number; maximum?: number };
      if (minimum !== undefined && maximum !== undefined) {
        if (value < minimum || value > maximum) {
          return invalid(`is not between ${minimum} and ${maximum}`);
        }
      } else if (minimum !== undefined && value < minimum) {
        return invalid(`is below the minimum of ${minimum}`);
      } else if (maximum !== undefined && value > maximum) {
        return invalid(`is above the maximum of ${maximum}`);
      }
      return;
    }
    case "boolean":
      if (typeof value !== "boolean") expected("true or false");
      return;
    case "array": {
      if (!Array.isArray(value)) return expected("an array");
      const maxItems = schema.maxItems as number | undefined;
      if (maxItems !== undefined && value.length > maxItems) {
        return fail(`has ${value.length} entries; at most ${maxItems} are allowed`);
      }
      value.forEach((item, index) =>
        check(schema.items as Schema, item, fieldPath(path, index), problems)
      );
      return;
    }
    case "object":
      return checkObject(schema, value, path, problems);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkObject(
  schema: Schema,
  value: unknown,
  path: string,
  problems: SchemaProblem[],
  others: Record<string, string> = {},
  allKnown?: string[],
): void {
  const hints: Hints = schema[HINTS] ?? {};
  if (!isObject(value)) {
    problems.push({
      path,
      problem: `expected ${hints.expected ?? "an object"}, got ${describeValue(value)}`,
    });
    return;
  }
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const extra = schema.additionalProperties;
  if (typeof extra === "object") {
    for (const [key, item] of Object.entries(value)) {
      check(extra as Schema, item, fieldPath(path, key), problems);
    }
    return;
  }
  const known = Object.keys(properties);
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    problems.push({
      path: fieldPath(path, key),
      problem: key in others
        ? others[key]
        : `unknown field; the known fields here are ${(allKnown ?? known).join(", ")}`,
    });
  }
  const required = (schema.required ?? []) as string[];
  for (const [key, property] of Object.entries(properties)) {
    if (value[key] === undefined) {
      if (required.includes(key)) {
        const missing = property[HINTS]?.missing;
        problems.push({
          path: fieldPath(path, key),
          problem: missing === undefined ? "missing" : `missing; ${missing}`,
        });
      }
      continue;
    }
    check(property, value[key], fieldPath(path, key), problems);
  }
}

/** The JSON type of a value as the variants of a union are told apart. */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  if (typeof value === "number") return "number";
  return typeof value;
}

function kindOfSchema(schema: Schema): string | undefined {
  if ("const" in schema) return kindOf(schema.const);
  const type = schema.type as string | undefined;
  return type === "integer" ? "number" : type;
}

function checkUnion(
  schema: Schema,
  value: unknown,
  path: string,
  problems: SchemaProblem[],
): void {
  const variants = schema.oneOf as Schema[];
  const matching = variants.filter((variant) => kindOfSchema(variant) === kindOf(value));
  if (matching.length === 0) {
    const hints: Hints = schema[HINTS] ?? {};
    const words = variants.map(describeSchema).join(" or ");
    problems.push({
      path,
      problem: `expected ${hints.expected ?? words}, got ${describeValue(value)}`,
    });
    return;
  }
  if (matching.length === 1 || kindOf(value) !== "object") {
    return check(matching[0], value, path, problems);
  }
  // Objects: the variant whose first required property is present, else the last.
  const object = value as Record<string, unknown>;
  const chosen = matching.find((variant) => {
    const first = (variant.required as string[] | undefined)?.[0];
    return first !== undefined && object[first] !== undefined;
  }) ?? matching.at(-1)!;
  // Another variant's property: "not with boot.demo; HINT" when the chosen variant says
  // why it excludes the others (its conflict hint); else "only with boot.firmware", with
  // the property's own conflict hint after a colon.
  const chosenKeys = Object.keys((chosen.properties ?? {}) as object);
  const chosenKey = (chosen.required as string[] | undefined)?.[0];
  const chosenConflict = chosen[HINTS]?.conflict;
  const others: Record<string, string> = {};
  const allKnown = [...chosenKeys];
  for (const variant of matching) {
    if (variant === chosen) continue;
    const key = (variant.required as string[] | undefined)?.[0];
    const properties = (variant.properties ?? {}) as Record<string, Schema>;
    for (const [property, propertySchema] of Object.entries(properties)) {
      if (chosenKeys.includes(property) || property in others) continue;
      allKnown.push(property);
      const conflict = propertySchema[HINTS]?.conflict;
      others[property] = chosenConflict !== undefined && chosenKey !== undefined
        ? `not with ${fieldPath(path, chosenKey)}; ${chosenConflict}`
        : `only with ${fieldPath(path, key ?? property)}` +
          (conflict === undefined ? "" : `: ${conflict}`);
    }
  }
  checkObject(chosen, value, path, problems, others, allKnown);
}

function describeSchema(schema: Schema): string {
  if ("const" in schema) return JSON.stringify(schema.const);
  switch (schema.type) {
    case "string":
      return "a string";
    case "integer":
      return "a whole number";
    case "number":
      return "a number";
    case "boolean":
      return "true, false";
    case "array":
      return "an array";
    default:
      return "an object";
  }
}
