/**
 * The OpenAPI paths and schemas of live migration (manager/daemon/migration_routes.ts),
 * merged into the document by openapi.ts.
 *
 * @module
 */

import {
  integer,
  json,
  object,
  type Operation,
  pathParameter,
  ref,
  type Schema,
  string,
} from "./openapi_builders.ts";

const NAME = pathParameter("name", "Domain name");

/** The schemas of the types these routes use. */
export const MIGRATION_SCHEMAS: Record<string, Schema> = {
  MigrationProgress: object({
    direction: { enum: ["outgoing", "incoming"] },
    peer: string,
    startedAt: { type: "string", format: "date-time" },
    iteration: integer,
    bytesSent: integer,
    remainingBytes: { ...integer, description: "Dirtied during the last round" },
    dirtyRate: { ...integer, description: "Bytes per second dirtied in the last round" },
    bandwidth: { ...integer, description: "Bytes per second relayed in the last round" },
    expectedDowntimeMs: integer,
    throttlePercent: {
      ...integer,
      maximum: 99,
      description: "Auto-converge: share of time the source keeps the guest's vCPUs paused",
    },
    phase: { enum: ["connecting", "copying", "switch-over"] },
  }, [
    "direction",
    "peer",
    "startedAt",
    "iteration",
    "bytesSent",
    "remainingBytes",
    "dirtyRate",
    "bandwidth",
    "expectedDowntimeMs",
    "throttlePercent",
    "phase",
  ]),
  MigrationResult: object({
    domain: string,
    dest: string,
    iterations: integer,
    bytesSent: integer,
    totalMs: { type: "number", minimum: 0 },
    downtimeMs: { type: "number", minimum: 0 },
    switchOver: object(
      {
        pause: { type: "number", minimum: 0 },
        lastPages: { type: "number", minimum: 0 },
        state: { type: "number", minimum: 0 },
        disks: { type: "number", minimum: 0 },
        destination: { type: "number", minimum: 0 },
      },
      ["pause", "lastPages", "state", "disks", "destination"],
      {
        description: "Where the downtime went (ms), up to the destination's ACK",
      },
    ),
  }, ["domain", "dest", "iterations", "bytesSent", "totalMs", "downtimeMs"]),
};

/** The paths, built with openapi.ts's `operation` (its error responses). */
export function migrationPaths(operation: Operation): Record<string, Record<string, Schema>> {
  return {
    "/v1/domains/{name}/migrate": {
      post: operation(
        "migrateDomain",
        "Move a running domain to another host's daemon (xl migrate); defined there, " +
          "undefined here once it runs there",
        {
          ok: [200, json(ref("MigrationResult"), "The guest runs on the destination")],
          body: ref("MigrateRequest"),
          parameters: [NAME],
        },
      ),
    },
    "/v1/domains/{name}/migrate-abort": {
      post: operation("abortMigration", "Stop an outgoing migration before its switch-over", {
        ok: [200, json(ref("MigrationProgress"), "Where the stopped migration was")],
        parameters: [NAME],
      }),
    },
  };
}
