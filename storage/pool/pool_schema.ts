/**
 * The pool API's request bodies, written once (common/schema.ts): pool_types.ts takes its
 * types from here, the OpenAPI document its schemas (manager/api_schema.ts lists them),
 * and the pool manager its structural checks (`checkPoolRequest`). Names, paths and
 * formats that need the pool or the host to judge stay in code (pool_definition.ts,
 * volume_ops.ts, snapshots.ts). docs/api-schema.md says why it is built this way.
 *
 * @module
 */

import {
  boolean,
  choice,
  integer,
  named,
  object,
  optional,
  type Schema,
  type Static,
  string,
  union,
} from "../../common/schema.ts";
import { checkSchema } from "../../common/schema_check.ts";
import { IMAGE_FORMATS } from "../../common/enums.ts";
import { PoolError } from "./pool_error.ts";

/** Storage pool types (storage/pool/). */
export const POOL_TYPES = ["dir", "btrfs", "block", "shared"] as const;

const SIZE = union([integer(), string()], {
  description: 'Bytes, or a string with a unit such as "10G"',
  hints: { expected: 'a number of bytes or a size such as "10G"' },
});

/** A pool as the user defines it. */
export const PoolDefinition = named(
  "PoolDefinition",
  object({
    name: string({ hints: { missing: "every pool needs a name" } }),
    type: choice(POOL_TYPES, {
      hints: {
        missing: `give one of ${POOL_TYPES.join(", ")}`,
        invalid: `is not a pool type; use ${POOL_TYPES.join(", ")}`,
      },
    }),
    path: string({
      description: "dir, btrfs, shared: a directory; block: a block device (a disk whose " +
        "partitions are the volumes)",
      hints: { missing: "give an absolute path (a directory, or a block device for a block pool)" },
    }),
    autostart: optional(boolean()),
  }),
);

/** POST /v1/pools/{pool}/volumes: create, clone from a backing volume, or import. */
export const VolumeCreateRequest = named(
  "VolumeCreateRequest",
  object({
    name: string({ hints: { missing: "every volume needs a name" } }),
    format: optional(choice(IMAGE_FORMATS)),
    size: optional(SIZE),
    preallocation: optional(choice(["off", "metadata", "full"])),
    backingVolume: optional(string({
      description: "Make a linked clone: a qcow2 overlay on this volume of the same pool",
    })),
    import: optional(string({ description: "Copy this host file into the pool" })),
  }),
);

/** POST /v1/pools/{pool}/volumes/{vol}/{action}. */
export const VolumeActionRequest = named(
  "VolumeActionRequest",
  object({
    size: optional(withDescription(SIZE, "resize: the new size; shrinking needs force")),
    force: optional(boolean()),
    target: optional(string({
      description: "clone, snapshot, convert, export: the new volume's or snapshot's name, " +
        "or the export path",
    })),
    mode: optional(choice(["full", "linked"], {
      description: 'clone: "full" (reflink where possible) or "linked" (qcow2 overlay)',
    })),
    format: optional(choice(IMAGE_FORMATS, { description: "convert, export: the format" })),
    snapshot: optional(string({ description: "rollback, delete-snapshot: which snapshot" })),
    dropNewer: optional(boolean({
      description: "rollback in a dir or shared pool: delete the snapshots taken after it " +
        "(without it such a rollback is refused with their names)",
    })),
  }),
);

/** The pool schemas of request bodies, for the OpenAPI document. */
export const POOL_REQUEST_SCHEMAS = [PoolDefinition, VolumeCreateRequest, VolumeActionRequest];

export type PoolDefinitionBody = Static<typeof PoolDefinition>;
export type VolumeCreateBody = Static<typeof VolumeCreateRequest>;
export type VolumeActionBody = Static<typeof VolumeActionRequest>;

function withDescription<S extends Schema>(schema: S, description: string): S {
  return { ...schema, description };
}

/**
 * `body` checked against `schema`: a PoolError (`invalid`) naming every bad field, one per
 * line, or the body typed.
 */
export function checkPoolRequest<S extends Schema>(
  schema: S,
  body: unknown,
  what: string,
): Static<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new PoolError("invalid", `${what} is a JSON object`);
  }
  const problems = checkSchema(schema, body);
  if (problems.length > 0) {
    throw new PoolError(
      "invalid",
      problems.map(({ path, problem }) => `${path}: ${problem}`).join("\n"),
    );
  }
  return body as Static<S>;
}
