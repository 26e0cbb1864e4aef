/**
 * Pool definitions as the API receives them (validated once, here) and the storage
 * backend each pool type maps to.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { PoolDefinition, PoolType } from "./pool_types.ts";
import type { PoolBackend } from "./backend.ts";
import { BlockPool } from "./block_pool.ts";
import { BtrfsPool } from "./btrfs_pool.ts";
import { DirPool, SharedPool } from "./dir_pool.ts";
import { checkName } from "./volume_context.ts";
import { PoolError } from "./pool_error.ts";

/** The pool types Denovisor manages. */
export const POOL_TYPES: readonly PoolType[] = ["dir", "btrfs", "block", "shared"];
const DEFINITION_FIELDS = new Set(["name", "type", "path", "autostart"]);

/** The storage technology behind a pool. */
export function backendFor(definition: PoolDefinition): PoolBackend {
  switch (definition.type) {
    case "dir":
      return new DirPool(definition.path);
    case "shared":
      return new SharedPool(definition.path);
    case "btrfs":
      return new BtrfsPool(definition.path);
    case "block":
      return new BlockPool(definition.path);
  }
}

/** A definition from the API, validated: unknown fields, bad names, types and paths are refused. */
export function checkDefinition(body: unknown): PoolDefinition {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new PoolError("invalid", "A pool definition is a JSON object with name, type and path");
  }
  for (const key of Object.keys(body)) {
    if (!DEFINITION_FIELDS.has(key)) {
      throw new PoolError(
        "invalid",
        `Unknown field '${key}'; a pool has name, type, path and autostart`,
      );
    }
  }
  const definition = body as PoolDefinition;
  checkName(definition.name, "name");
  if (!POOL_TYPES.includes(definition.type)) {
    throw new PoolError(
      "invalid",
      `type: ${JSON.stringify(definition.type)} is not a pool type; use ${POOL_TYPES.join(", ")}`,
    );
  }
  if (typeof definition.path !== "string" || !isAbsolute(definition.path)) {
    throw new PoolError(
      "invalid",
      "path: give an absolute path (a directory, or a block device for a block pool)",
    );
  }
  if (definition.autostart !== undefined && typeof definition.autostart !== "boolean") {
    throw new PoolError("invalid", "autostart: give true or false");
  }
  return {
    name: definition.name,
    type: definition.type,
    path: resolve(definition.path),
    ...(definition.autostart === undefined ? {} : { autostart: definition.autostart }),
  };
}
