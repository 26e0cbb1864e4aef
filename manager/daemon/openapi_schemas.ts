/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the API types in manager/api_types.ts,
 * for the OpenAPI description (openapi.ts). The request bodies and the domain definition
 * are generated from their one schema (manager/api_schema.ts, which the daemon validates
 * with and the types come from); the answers are still written here, and openapi_test.ts
 * checks their field lists against sample values of the TypeScript types.
 *
 * @module
 */

import { DOMAIN_STATES, IMAGE_FORMATS } from "../../common/enums.ts";
import { ERROR_CODES } from "../../common/errors.ts";
import { REQUEST_SCHEMAS } from "../api_schema.ts";
import { toJsonSchema } from "../../common/schema.ts";
import { boolean, integer, object, ref, type Schema, string } from "./openapi_builders.ts";

const domainSummary = {
  name: string,
  uuid: { type: "string", format: "uuid" },
  state: ref("DomainState"),
  vcpus: integer,
  memoryBytes: integer,
  autostart: boolean,
  persistent: boolean,
  pid: integer,
  id: { type: "integer", description: "The domain id while it runs (xl's domid)" },
  host: { type: "string", description: "In a farm: the host running the domain" },
  next: object({ vcpus: integer, memoryBytes: integer }, [], {
    description: "A running domain's values from its next start, where they differ",
  }),
};

const poolDefinition = {
  name: string,
  type: { enum: ["dir", "btrfs", "block", "shared"] },
  path: string,
  autostart: boolean,
};

/** The request schemas of manager/api_schema.ts as JSON, with the schemas they name. */
function requestSchemas(): Record<string, Schema> {
  const components: Record<string, Schema> = {};
  for (const schema of REQUEST_SCHEMAS) toJsonSchema(schema, components, false);
  return components;
}

/** Every schema of the API, by type name. */
export const SCHEMAS: Record<string, Schema> = {
  ...requestSchemas(),
  DomainState: { enum: [...DOMAIN_STATES] },
  DomainSummary: object(domainSummary, [
    "name",
    "uuid",
    "state",
    "vcpus",
    "memoryBytes",
    "autostart",
    "persistent",
  ]),
  DomainInfo: object({
    ...domainSummary,
    definition: ref("DomainDefinition"),
    startedAt: { type: "string", format: "date-time" },
    lastEnd: string,
    consoleSocket: string,
    logFile: string,
    note: { type: "string", description: "A remark on the request just answered" },
    migration: ref("MigrationProgress"),
  }, [
    "name",
    "uuid",
    "state",
    "vcpus",
    "memoryBytes",
    "autostart",
    "persistent",
    "definition",
    "logFile",
  ]),
  VcpuStats: object({ index: integer, cpuTimeNs: integer }, ["index", "cpuTimeNs"]),
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
  DomainEvent: object({
    time: { type: "string", format: "date-time" },
    domain: string,
    kind: {
      enum: [
        "defined",
        "undefined",
        "started",
        "paused",
        "resumed",
        "shutdown",
        "rebooted",
        "crashed",
        "destroyed",
        "stopped",
        "migrating",
        "migrated",
        "migration-failed",
      ],
    },
    detail: string,
  }, ["time", "domain", "kind"]),
  HostInfo: object({
    version: string,
    hostname: string,
    cpus: integer,
    memoryBytes: integer,
    domainsDefined: integer,
    domainsRunning: integer,
    stateDir: string,
    socket: string,
  }, [
    "version",
    "hostname",
    "cpus",
    "memoryBytes",
    "domainsDefined",
    "domainsRunning",
    "stateDir",
    "socket",
  ]),
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
