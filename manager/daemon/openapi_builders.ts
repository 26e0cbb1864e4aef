/**
 * The small builders every part of the OpenAPI document uses (openapi.ts,
 * openapi_schemas.ts, the save, migration and farm parts), so each part writes only what
 * is its own.
 *
 * @module
 */

/** A JSON Schema or OpenAPI object, as plain JSON. */
export type Schema = Record<string, unknown>;

/** How each part describes one operation (openapi.ts's `operation`). */
export type Operation = (
  operationId: string,
  summary: string,
  options: { ok: [number, Schema]; body?: Schema; parameters?: Schema[] },
) => Schema;

export const string: Schema = { type: "string" };
export const boolean: Schema = { type: "boolean" };
/** A non-negative integer (counts, sizes, ids). */
export const integer: Schema = { type: "integer", minimum: 0 };

/** A `$ref` to a schema in components. */
export function ref(name: string): Schema {
  return { $ref: `#/components/schemas/${name}` };
}

/** A closed object: unknown properties are refused, as the API's validators refuse them. */
export function object(
  properties: Record<string, Schema>,
  required: string[] = [],
  extra: Schema = {},
): Schema {
  return { type: "object", properties, required, additionalProperties: false, ...extra };
}

/** A JSON response with its description. */
export function json(schema: Schema, description: string): Schema {
  return { description, content: { "application/json": { schema } } };
}

/** A required path parameter, optionally one of `values`. */
export function pathParameter(name: string, description: string, values?: string[]): Schema {
  return {
    name,
    in: "path",
    required: true,
    description,
    schema: values ? { type: "string", enum: values } : { type: "string" },
  };
}
