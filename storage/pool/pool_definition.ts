/**
 * Pool definitions as the API receives them (validated once, here) and the storage
 * backend each pool type maps to.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { PoolDefinition } from "./pool_types.ts";
import { checkPoolRequest, PoolDefinition as PoolDefinitionSchema } from "./pool_schema.ts";
import type { PoolBackend } from "./backend.ts";
import { BlockPool } from "./block_pool.ts";
import { BtrfsPool } from "./btrfs_pool.ts";
import { DirPool, SharedPool } from "./dir_pool.ts";
import { checkName } from "./volume_context.ts";
import { PoolError } from "./pool_error.ts";

/** The pool types Denovisor manages. */
export { POOL_TYPES } from "./pool_schema.ts";

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
  const definition = checkPoolRequest(
    PoolDefinitionSchema,
    body,
    "A pool definition (name, type, path, autostart)",
  );
  checkName(definition.name, "name");
  if (!isAbsolute(definition.path)) {
    throw new PoolError(
      "invalid",
      "path: give an absolute path (a directory, or a block device for a block pool)",
    );
  }
  return {
    name: definition.name,
    type: definition.type,
    path: resolve(definition.path),
    ...(definition.autostart === undefined ? {} : { autostart: definition.autostart }),
  };
}
