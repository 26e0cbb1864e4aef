/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the API types in manager/api_types.ts,
 * for the OpenAPI description (openapi.ts). The request bodies, the domain definition and
 * the domain and host answers are generated from their one schema (manager/api_schema.ts,
 * api_answer_schema.ts, storage/pool/pool_schema.ts: the daemon validates with them and
 * the types come from them); the other answers (stats, pools, volumes, errors) are still
 * written here, and openapi_test.ts checks their field lists against the TypeScript types.
 *
 * @module
 */

import { IMAGE_FORMATS } from "../../common/enums.ts";
import { ERROR_CODES } from "../../common/errors.ts";
import { REQUEST_SCHEMAS } from "../api_schema.ts";
import { ANSWER_SCHEMAS } from "../api_answer_schema.ts";
import { toJsonSchema } from "../../common/schema.ts";
import { boolean, integer, object, ref, type Schema, string } from "./openapi_builders.ts";

const poolDefinition = {
  name: string,
  type: { enum: ["dir", "btrfs", "block", "shared"] },
  path: string,
  autostart: boolean,
};

/**
 * The schemas written once (manager/api_schema.ts's requests, api_answer_schema.ts's
 * answers) as JSON, with the schemas they name.
 */
function generatedSchemas(): Record<string, Schema> {
  const components: Record<string, Schema> = {};
  for (const schema of [...REQUEST_SCHEMAS, ...ANSWER_SCHEMAS]) {
    toJsonSchema(schema, components, false);
  }
  return components;
}

/** Every schema of the API, by type name. */
export const SCHEMAS: Record<string, Schema> = {
  ...generatedSchemas(),
  // cpuTimeNs is absent for a vCPU with no thread of its own (vmm/vcpu_cpu_time.ts).
  VcpuStats: object({ index: integer, cpuTimeNs: integer }, ["index"]),
  DiskStats: object({
    name: string,
    path: string,
    readRequests: integer,
    writeRequests: integer,
    readBytes: integer,
    writeBytes: integer,
    flushes: integer,
    errors: integer,
    throttled: integer,
  }, [
    "name",
    "path",
    "readRequests",
    "writeRequests",
    "readBytes",
    "writeBytes",
    "flushes",
    "errors",
    "throttled",
  ]),
  NicStats: object({
    name: string,
    tap: string,
    mac: string,
    rxFrames: integer,
    txFrames: integer,
    rxBytes: integer,
    txBytes: integer,
    rxDropped: integer,
  }, ["name", "tap", "mac", "rxFrames", "txFrames", "rxBytes", "txBytes", "rxDropped"]),
  DomainStats: object({
    name: string,
    state: ref("DomainState"),
    vcpus: { type: "array", items: ref("VcpuStats") },
    memory: object(
      { guestBytes: integer, availableBytes: integer, balloonBytes: integer, rssBytes: integer },
      ["guestBytes", "availableBytes", "balloonBytes", "rssBytes"],
    ),
    disks: { type: "array", items: ref("DiskStats") },
    nics: { type: "array", items: ref("NicStats") },
    cgroup: object(
      { memoryBytes: integer, memoryLimitBytes: integer, oomKills: integer, pids: integer },
      ["memoryBytes", "oomKills", "pids"],
      { description: "The VMM's cgroup, when the domain has one (README, security)" },
    ),
  }, ["name", "state", "vcpus", "memory", "disks", "nics"]),
  PoolInfo: object({
    ...poolDefinition,
    state: { enum: ["inactive", "active", "building"] },
    shared: { type: "boolean", description: "Storage every host of a cluster mounts" },
    capacityBytes: integer,
    allocationBytes: integer,
    availableBytes: integer,
    volumes: integer,
    skipped: {
      type: "array",
      items: string,
      description: "Entries of the pool that are not volumes (bad names, FIFOs, directories)",
    },
  }, ["name", "type", "path", "state", "volumes"]),
  VolumeProgress: object({
    busy: boolean,
    operation: string,
    doneBytes: integer,
    totalBytes: integer,
  }, ["busy"]),
  VolumeInfo: object({
    pool: string,
    name: string,
    path: string,
    format: { enum: [...IMAGE_FORMATS] },
    virtualSize: integer,
    allocatedSize: integer,
    backingChain: { type: "array", items: string },
    snapshots: { type: "array", items: string },
    usedBy: string,
  }, [
    "pool",
    "name",
    "path",
    "format",
    "virtualSize",
    "allocatedSize",
    "backingChain",
    "snapshots",
  ]),
  ApiErrorBody: object({
    error: object({
      code: { enum: [...ERROR_CODES] },
      message: {
        type: "string",
        examples: ["disks[1].volume: no volume 'web' in pool 'default'"],
      },
    }, ["code", "message"]),
  }, ["error"]),
};
