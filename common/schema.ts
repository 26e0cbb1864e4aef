/**
 * One schema, three uses: each builder returns a JSON Schema (2020-12, as OpenAPI 3.1
 * takes it) that also carries its TypeScript type (`Static<typeof X>`) and is walked by
 * `checkSchema` (schema_check.ts) to validate untrusted JSON with the project's
 * messages ("disks[1].path: expected a string, got 5"). The API's request bodies and the
 * domain definition are written once this way (manager/api_schema.ts); the OpenAPI
 * document, the types in manager/api_types.ts and the structural checks follow from
 * them. Why not TypeBox, Zod or Valibot: docs/api-schema.md.
 *
 * What is not JSON, and so never reaches the OpenAPI document, hangs off symbol keys:
 * whether a property is optional, the name a schema is hoisted under in
 * `components.schemas`, and the words of its refusals (`Hints`).
 *
 * @example
 * ```ts
 * import { checkSchema, integer, object, optional, type Static, string } from "./schema.ts";
 * const Memory = object({ targetBytes: integer(), note: optional(string()) });
 * type Memory = Static<typeof Memory>; // { targetBytes: number; note?: string }
 * checkSchema(Memory, { targetBytes: "x" }); // [{ path: "targetBytes", problem: "expected ..." }]
 * ```
 *
 * @module
 */

/** Carries a schema's TypeScript type; never set at run time. */
declare const STATIC: unique symbol;
/** Marks an optional property of an object schema. */
export const OPTIONAL: unique symbol = Symbol("optional");
/** The name a schema has in the OpenAPI document's `components.schemas`. */
export const NAME: unique symbol = Symbol("name");
/** The words of a schema's refusals. */
export const HINTS: unique symbol = Symbol("hints");

/** How refusals of a value read, beyond the generic "expected a string, got 5". */
export interface Hints {
  /** After "missing; " when a required property is absent. */
  missing?: string;
  /** What "expected ..., got X" names instead of the type ("a whole number of MiB"). */
  expected?: string;
  /** After the value when it fails a pattern, a length or a range ("is not a valid name"). */
  invalid?: string;
  /** After the message when another variant's property is present (unions of objects). */
  conflict?: string;
}

/** A JSON Schema that knows the TypeScript type of the values it accepts. */
export interface Schema<T = unknown> {
  readonly [STATIC]?: T;
  readonly [OPTIONAL]?: true;
  readonly [NAME]?: string;
  readonly [HINTS]?: Hints;
  readonly [keyword: string]: unknown;
}

/** The TypeScript type of the values `S` accepts. */
export type Static<S> = S extends Schema<infer T> ? T : never;

/** JSON Schema annotations and refusal words every builder takes. */
export interface Options {
  description?: string;
  examples?: unknown[];
  hints?: Hints;
}

type Properties = Record<string, Schema>;
type OptionalKeys<P extends Properties> = {
  [K in keyof P]: P[K] extends { readonly [OPTIONAL]: true } ? K : never;
}[keyof P];
type Flatten<T> = { -readonly [K in keyof T]: T[K] };
/** The type of an object schema: its optional properties with `?`. */
export type ObjectStatic<P extends Properties> = Flatten<
  & { [K in Exclude<keyof P, OptionalKeys<P>>]: Static<P[K]> }
  & { [K in OptionalKeys<P>]?: Static<P[K]> }
>;

function build<T>(json: Record<string, unknown>, options: Options = {}): Schema<T> {
  const { description, examples, hints } = options;
  const schema: Record<string | symbol, unknown> = {
    ...json,
    ...(description === undefined ? {} : { description }),
    ...(examples === undefined ? {} : { examples }),
  };
  if (hints !== undefined) schema[HINTS] = hints;
  return schema as Schema<T>;
}

/** A string; `pattern` as a RegExp or its source. */
export function string(
  options: Options & {
    pattern?: RegExp | string;
    minLength?: number;
    maxLength?: number;
    format?: string;
  } = {},
): Schema<string> {
  const { pattern, minLength, maxLength, format, ...rest } = options;
  return build({
    type: "string",
    ...(pattern === undefined
      ? {}
      : { pattern: typeof pattern === "string" ? pattern : pattern.source }),
    ...(minLength === undefined ? {} : { minLength }),
    ...(maxLength === undefined ? {} : { maxLength }),
    ...(format === undefined ? {} : { format }),
  }, rest);
}

/** A whole number (a safe integer), `minimum` 0 unless told otherwise. */
export function integer(
  options: Options & { minimum?: number; maximum?: number } = {},
): Schema<number> {
  const { minimum = 0, maximum, ...rest } = options;
  return build({
    type: "integer",
    minimum,
    ...(maximum === undefined ? {} : { maximum }),
  }, rest);
}

/** Any finite number at or above `minimum` (0 unless told otherwise). */
export function number(options: Options & { minimum?: number } = {}): Schema<number> {
  const { minimum = 0, ...rest } = options;
  return build({ type: "number", minimum }, rest);
}

/** true or false. */
export function boolean(options: Options = {}): Schema<boolean> {
  return build({ type: "boolean" }, options);
}

/** Exactly `value` (`{"demo": true}`). */
export function literal<const T extends string | number | boolean>(
  value: T,
  options: Options = {},
): Schema<T> {
  return build({ const: value }, options);
}

/** One of the strings `values`. */
export function choice<const T extends string>(
  values: readonly T[],
  options: Options = {},
): Schema<T> {
  return build({ type: "string", enum: [...values] }, options);
}

/** An array of `items`. */
export function array<S extends Schema>(
  items: S,
  options: Options & { maxItems?: number } = {},
): Schema<Static<S>[]> {
  const { maxItems, ...rest } = options;
  return build({ type: "array", items, ...(maxItems === undefined ? {} : { maxItems }) }, rest);
}

/** A closed object: properties not in `properties` are refused. */
export function object<P extends Properties>(
  properties: P,
  options: Options = {},
): Schema<ObjectStatic<P>> {
  const required = Object.keys(properties).filter((key) => properties[key][OPTIONAL] !== true);
  return build({ type: "object", properties, required, additionalProperties: false }, options);
}

/** An object whose every value is `values` (labels). */
export function record<S extends Schema>(
  values: S,
  options: Options = {},
): Schema<Record<string, Static<S>>> {
  return build({ type: "object", additionalProperties: values }, options);
}

/**
 * One of `variants`. A value is checked against the variant of its JSON type; among
 * object variants, against the first whose first required property it has (else the last).
 */
export function union<const V extends readonly Schema[]>(
  variants: V,
  options: Options = {},
): Schema<Static<V[number]>> {
  return build({ oneOf: [...variants] }, options);
}

/**
 * A schema written elsewhere (still by hand in the OpenAPI document): a `$ref` to
 * `components.schemas[name]` whose TypeScript type is `T`. It checks nothing; it lets
 * a schema here use a type not moved yet.
 */
export function external<T>(name: string): Schema<T> {
  return { $ref: `#/components/schemas/${name}` } as Schema<T>;
}

/** `schema` as an optional property of an object. */
export function optional<T>(schema: Schema<T>): Schema<T> & { readonly [OPTIONAL]: true } {
  return Object.assign(copy(schema), { [OPTIONAL]: true as const });
}

/** `schema` under `name` in the OpenAPI document's components (a `$ref` where used). */
export function named<S extends Schema>(name: string, schema: S): S {
  return Object.assign(copy(schema), { [NAME]: name }) as S;
}

/** `schema` with `hints` added to its own (a shared schema with words for one use). */
export function withHints<S extends Schema>(schema: S, hints: Hints): S {
  return Object.assign(copy(schema), { [HINTS]: { ...schema[HINTS], ...hints } }) as S;
}

function copy<S extends Schema>(schema: S): S {
  const result: Record<string | symbol, unknown> = { ...(schema as Record<string, unknown>) };
  for (const key of [HINTS, NAME, OPTIONAL] as const) {
    if (schema[key] !== undefined) result[key] = schema[key];
  }
  return result as S;
}

/** The keys of an object schema's properties, in order. */
export function propertyKeys(schema: Schema): string[] {
  return Object.keys((schema.properties ?? {}) as Properties);
}

/**
 * `schema` as plain JSON Schema: every named sub-schema (but `schema` itself) becomes a
 * `$ref` and is added to `components` (the OpenAPI document's `components.schemas`).
 */
export function toJsonSchema(
  schema: Schema,
  components: Record<string, unknown>,
  top = true,
): Record<string, unknown> {
  const name = schema[NAME];
  if (!top && name !== undefined) {
    if (!(name in components)) {
      components[name] = {}; // Held, in case the schema refers to itself.
      components[name] = toJsonSchema(schema, components, true);
    }
    return { $ref: `#/components/schemas/${name}` };
  }
  const json: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "properties") {
      json.properties = Object.fromEntries(
        Object.entries(value as Properties).map((
          [k, v],
        ) => [k, toJsonSchema(v, components, false)]),
      );
    } else if (key === "items" || (key === "additionalProperties" && typeof value === "object")) {
      json[key] = toJsonSchema(value as Schema, components, false);
    } else if (key === "oneOf") {
      json.oneOf = (value as Schema[]).map((each) => toJsonSchema(each, components, false));
    } else {
      json[key] = value;
    }
  }
  return json;
}
