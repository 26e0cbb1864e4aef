/**
 * The OpenAPI paths and schemas of save, restore, domain snapshots and clones
 * (manager/daemon/save_routes.ts), merged into the document by openapi.ts.
 *
 * @module
 */

import {
  boolean,
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
const SNAPSHOT = pathParameter("snapshot", "Snapshot name");

/** The schemas of the types these routes use. */
export const SAVE_SCHEMAS: Record<string, Schema> = {
  SaveResult: object({
    domain: string,
    stateFile: string,
    memoryFile: string,
    definitionFile: string,
    stateBytes: integer,
    memoryDataBytes: integer,
    pausedMs: { type: "number", minimum: 0 },
    kept: boolean,
  }, [
    "domain",
    "stateFile",
    "memoryFile",
    "definitionFile",
    "stateBytes",
    "memoryDataBytes",
    "pausedMs",
    "kept",
  ]),
  SnapshotDisk: object({ id: string, pool: string, volume: string }, ["id", "pool", "volume"]),
  SnapshotInfo: object({
    name: string,
    domain: string,
    createdAt: { type: "string", format: "date-time" },
    description: string,
    domainState: ref("DomainState"),
    memory: boolean,
    disks: { type: "array", items: ref("SnapshotDisk") },
    parent: string,
    current: boolean,
    stateBytes: integer,
    memoryDataBytes: integer,
  }, ["name", "domain", "createdAt", "domainState", "memory", "disks"]),
};

/** The paths, built with openapi.ts's `operation` (its error responses). */
export function savePaths(operation: Operation): Record<string, Record<string, Schema>> {
  const domainInfo: [number, Schema] = [200, json(ref("DomainInfo"), "The domain")];
  const snapshotInfo: [number, Schema] = [200, json(ref("SnapshotInfo"), "The snapshot")];
  return {
    "/v1/domains/{name}/save": {
      post: operation("saveDomain", "Save the domain's state and memory to a file (xl save)", {
        ok: [200, json(ref("SaveResult"), "What was written")],
        body: ref("SaveRequest"),
        parameters: [NAME],
      }),
    },
    "/v1/restore": {
      post: operation("restoreDomain", "Start a domain from a saved state (xl restore)", {
        ok: domainInfo,
        body: ref("RestoreRequest"),
      }),
    },
    "/v1/domains/{name}/snapshots": {
      get: operation("listSnapshots", "The domain's snapshots, oldest first", {
        ok: [200, json({ type: "array", items: ref("SnapshotInfo") }, "The snapshots")],
        parameters: [NAME],
      }),
      post: operation("createSnapshot", "Snapshot the disks, and the memory of a running domain", {
        ok: [201, json(ref("SnapshotInfo"), "The new snapshot")],
        body: ref("SnapshotCreateRequest"),
        parameters: [NAME],
      }),
    },
    "/v1/domains/{name}/snapshots/{snapshot}": {
      get: operation("getSnapshot", "One snapshot", {
        ok: snapshotInfo,
        parameters: [NAME, SNAPSHOT],
      }),
      delete: operation("deleteSnapshot", "Delete a snapshot, merging its disk state", {
        ok: [204, { description: "Done; no body" }],
        parameters: [NAME, SNAPSHOT],
      }),
    },
    "/v1/domains/{name}/snapshots/{snapshot}/revert": {
      post: operation("revertSnapshot", "Roll the domain back to a snapshot: disks and memory", {
        ok: domainInfo,
        parameters: [NAME, SNAPSHOT],
      }),
    },
    "/v1/domains/{name}/clone": {
      post: operation("cloneDomain", "New domains from this one or one of its snapshots", {
        ok: [201, json({ type: "array", items: ref("DomainInfo") }, "The clones")],
        body: ref("CloneRequest"),
        parameters: [NAME],
      }),
    },
  };
}
