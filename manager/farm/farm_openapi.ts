/**
 * The OpenAPI paths and schemas of the farm routes (farm_routes.ts, types in
 * farm_api.ts), merged into the document by manager/daemon/openapi.ts. A daemon
 * without --farm answers them with 404.
 *
 * @module
 */

import {
  boolean,
  json,
  object,
  type Operation,
  pathParameter,
  ref,
  type Schema,
  string,
} from "../daemon/openapi_builders.ts";

/** Farm figures are plain integers (no lower bound in the schema). */
const integer: Schema = { type: "integer" };
const labels: Schema = { type: "object", additionalProperties: string };

const HOST = pathParameter("host", "Host name");

const hostFields = {
  name: string,
  address: string,
  capacity: object({ memoryBytes: integer, vcpus: integer }, ["memoryBytes", "vcpus"]),
  labels,
  migrationListen: string,
  domainStates: { type: "object", additionalProperties: string },
  pools: { type: "array", items: string },
  version: string,
  joinedAt: string,
  updatedAt: string,
  state: { enum: ["up", "maintenance", "down"] },
  maintenance: boolean,
  freeMemoryBytes: integer,
  freeVcpus: integer,
  domains: { type: "array", items: string },
};

/** The schemas of the farm's types. */
export const FARM_SCHEMAS: Record<string, Schema> = {
  FarmHost: object(
    hostFields,
    Object.keys(hostFields).filter((k) =>
      !["migrationListen", "domainStates", "pools"].includes(k)
    ),
  ),
  FarmHostInfo: object({
    ...hostFields,
    running: {
      type: "array",
      items: object({ domain: string, since: string, detached: boolean }, ["domain", "since"]),
    },
    events: { type: "array", items: ref("EventRecord") },
  }, ["name", "state", "running", "events"]),
  FarmStatus: object({
    farm: string,
    host: string,
    etcd: object({
      version: string,
      leader: string,
      revision: integer,
      endpoints: {
        type: "array",
        items: object(
          { endpoint: string, ok: boolean, version: string, leader: boolean, error: string },
          ["endpoint", "ok"],
        ),
      },
    }),
    leaseTtlSeconds: integer,
    fenceAfterSeconds: { type: "number" },
    haDelaySeconds: { type: "number" },
    fenced: boolean,
    hosts: { type: "array", items: ref("FarmHost") },
    owners: {
      type: "array",
      items: object({ domain: string, host: string, since: string, detached: boolean }, [
        "domain",
        "host",
        "since",
      ]),
    },
  }, ["farm", "host", "etcd", "hosts", "owners"]),
  EventRecord: object({
    time: string,
    host: string,
    kind: { type: "string", description: "joined, started, ha-restart, lost, evacuated..." },
    domain: string,
    detail: string,
  }, ["time", "host", "kind"]),
  EvacuationStep: object({
    domain: string,
    to: string,
    status: { enum: ["moving", "moved", "failed"] },
    how: { enum: ["live", "restart"] },
    note: string,
    error: string,
    seconds: { type: "number" },
    index: integer,
    total: integer,
  }, ["domain", "status"]),
};

/** The farm's paths, built with openapi.ts's `operation`. */
export function farmPaths(operation: Operation): Record<string, Record<string, Schema>> {
  return {
    "/v1/farm": {
      get: operation("farmStatus", "The farm: etcd, timings, hosts, running domains", {
        ok: [200, json(ref("FarmStatus"), "The farm as this host sees it")],
      }),
    },
    "/v1/farm/hosts": {
      get: operation("farmHosts", "The hosts with their state, free memory and vCPUs", {
        ok: [200, json({ type: "array", items: ref("FarmHost") }, "The hosts")],
        parameters: [{
          name: "all",
          in: "query",
          required: false,
          description: "1: the members that are down too (host list)",
          schema: { enum: ["0", "1"] },
        }],
      }),
    },
    "/v1/farm/hosts/{host}": {
      get: operation("farmHostInfo", "One host: capacity, load, domains, last events", {
        ok: [200, json(ref("FarmHostInfo"), "The host")],
        parameters: [HOST],
      }),
      delete: operation("farmHostRemove", "Forget a host that is down and runs nothing", {
        ok: [204, { description: "Removed" }],
        parameters: [HOST],
      }),
    },
    "/v1/farm/events": {
      get: operation("farmEvents", "The farm's recent events, oldest first", {
        ok: [200, json({ type: "array", items: ref("EventRecord") }, "The events")],
        parameters: [{
          name: "limit",
          in: "query",
          required: false,
          description: "How many (default 100)",
          schema: { type: "integer", minimum: 1, maximum: 10000 },
        }],
      }),
    },
    "/v1/farm/hosts/{host}/maintenance": {
      put: operation("farmMaintenance", "Keep new domains off a host, or allow them again", {
        ok: [200, json(ref("FarmHost"), "The host")],
        body: object({ enabled: boolean }, ["enabled"]),
        parameters: [HOST],
      }),
    },
    "/v1/farm/hosts/{host}/evacuate": {
      post: operation(
        "farmEvacuate",
        "Move every domain off a host: placed, migrated live, else stopped and started",
        {
          ok: [200, json({ type: "array", items: ref("EvacuationStep") }, "What moved where")],
          parameters: [HOST, {
            name: "progress",
            in: "query",
            required: false,
            description: "1: application/x-ndjson, a step per line as it starts and ends",
            schema: { enum: ["0", "1"] },
          }],
        },
      ),
    },
  };
}
