/**
 * The OpenAPI 3.1 description of the daemon API, served at GET /v1/openapi.json. It
 * describes every path listed in the header of manager/api_types.ts (openapi_test.ts
 * parses that header so the two cannot drift) with the schemas of openapi_schemas.ts.
 *
 * @module
 */

import { VERSION } from "../../common/version.ts";
import { SCHEMAS } from "./openapi_schemas.ts";
import { json, pathParameter, ref, type Schema } from "./openapi_builders.ts";
import { SAVE_SCHEMAS, savePaths } from "./openapi_save.ts";
import { MIGRATION_SCHEMAS, migrationPaths } from "./openapi_migration.ts";
import { FARM_SCHEMAS, farmPaths } from "../farm/farm_openapi.ts";
import { VOLUME_ACTIONS } from "../../storage/pool/mod.ts";
import { DOMAIN_ACTIONS } from "./domain_routes.ts";
import { POOL_ACTIONS } from "./pool_routes.ts";

function queryParameter(name: string, description: string, schema: Schema): Schema {
  return { name, in: "query", required: false, description, schema };
}

const NAME = pathParameter("name", "Domain name");
const POOL = pathParameter("pool", "Pool name");
const VOL = pathParameter("vol", "Volume name");

/** One operation: its answer, request body, parameters and the errors it can give. */
function operation(
  operationId: string,
  summary: string,
  options: {
    ok: [status: number, response: Schema];
    body?: Schema;
    parameters?: Schema[];
  },
): Schema {
  const [status, response] = options.ok;
  return {
    operationId,
    summary,
    ...(options.parameters ? { parameters: options.parameters } : {}),
    ...(options.body
      ? {
        requestBody: { required: true, content: { "application/json": { schema: options.body } } },
      }
      : {}),
    responses: {
      [String(status)]: response,
      "400": { $ref: "#/components/responses/Invalid" },
      "403": { $ref: "#/components/responses/Forbidden" },
      "404": { $ref: "#/components/responses/NotFound" },
      "409": { $ref: "#/components/responses/Conflict" },
      "500": { $ref: "#/components/responses/Internal" },
      "504": { $ref: "#/components/responses/Timeout" },
    },
  };
}

const NO_CONTENT: [number, Schema] = [204, { description: "Done; no body" }];
const DOMAIN_INFO: [number, Schema] = [200, json(ref("DomainInfo"), "The domain")];

function errorResponse(description: string): Schema {
  return json(ref("ApiErrorBody"), description);
}

const PATHS: Record<string, Record<string, Schema>> = {
  "/v1/host": {
    get: operation("getHost", "This host and the daemon", {
      ok: [200, json(ref("HostInfo"), "The host")],
    }),
  },
  "/v1/domains": {
    get: operation("listDomains", "Every defined or running domain", {
      ok: [200, json({ type: "array", items: ref("DomainSummary") }, "The domains")],
    }),
    post: operation("defineDomain", "Define a domain (define), or create and start one (create)", {
      ok: [201, json(ref("DomainInfo"), "The new domain")],
      body: ref("DomainDefinition"),
      parameters: [
        queryParameter("start", "1: start the domain at once", { enum: ["0", "1"] }),
        queryParameter("transient", "1: forget the domain when it stops (xl create)", {
          enum: ["0", "1"],
        }),
      ],
    }),
  },
  "/v1/domains/{name}": {
    get: operation("getDomain", "One domain", { ok: DOMAIN_INFO, parameters: [NAME] }),
    put: operation("editDomain", "Replace a domain's definition (edit); applies at next start", {
      ok: DOMAIN_INFO,
      body: ref("DomainDefinition"),
      parameters: [NAME],
    }),
    delete: operation("undefineDomain", "Forget a domain that is not running (undefine)", {
      ok: NO_CONTENT,
      parameters: [NAME],
    }),
  },
  "/v1/domains/{name}/{action}": {
    post: operation("domainAction", "Start, shut down, destroy, reboot, reset, pause, resume", {
      ok: DOMAIN_INFO,
      body: ref("ActionRequest"),
      parameters: [
        NAME,
        pathParameter("action", "What to do", [...DOMAIN_ACTIONS]),
        queryParameter("host", "start in a farm: auto, or the host to run it on", {
          type: "string",
        }),
      ],
    }),
  },
  "/v1/domains/{name}/stats": {
    get: operation("domainStats", "CPU time per vCPU, memory, disk and NIC counters", {
      ok: [200, json(ref("DomainStats"), "The counters")],
      parameters: [NAME],
    }),
  },
  "/v1/domains/{name}/logs": {
    get: operation("domainLogs", "The console output and VMM log lines", {
      ok: [200, {
        description: "The last lines of the log",
        content: { "text/plain": { schema: { type: "string" } } },
      }],
      parameters: [
        NAME,
        queryParameter("lines", "How many lines from the end", { type: "integer", minimum: 1 }),
      ],
    }),
  },
  "/v1/domains/{name}/console": {
    get: operation(
      "domainConsole",
      "The serial console, relayed: with 'Connection: Upgrade' and 'Upgrade: denovisor-console' the connection becomes the VMM's console protocol (vmm/vmm_config.ts)",
      { ok: [101, { description: "Switched to the console protocol" }], parameters: [NAME] },
    ),
  },
  "/v1/domains/{name}/memory": {
    put: operation("setMemory", "Set the balloon target (mem-set)", {
      ok: DOMAIN_INFO,
      body: ref("MemoryRequest"),
      parameters: [NAME],
    }),
  },
  "/v1/domains/{name}/vcpus": {
    put: operation("setVcpus", "Set the vCPU count (vcpu-set)", {
      ok: DOMAIN_INFO,
      body: ref("VcpusRequest"),
      parameters: [NAME],
    }),
  },
  "/v1/domains/{name}/autostart": {
    put: operation("setAutostart", "Start the domain when the daemon starts, or not", {
      ok: DOMAIN_INFO,
      body: ref("EnabledRequest"),
      parameters: [NAME],
    }),
  },
  "/v1/events": {
    get: operation("events", "Domain events as they happen, one JSON object per line", {
      ok: [200, {
        description: "A stream that stays open",
        content: { "application/x-ndjson": { schema: ref("DomainEvent") } },
      }],
    }),
  },
  "/v1/openapi.json": {
    get: operation("openapi", "This description", {
      ok: [200, json({ type: "object" }, "The OpenAPI 3.1 document")],
    }),
  },
  "/v1/pools": {
    get: operation("listPools", "Every storage pool", {
      ok: [200, json({ type: "array", items: ref("PoolInfo") }, "The pools")],
    }),
    post: operation("definePool", "Define a storage pool", {
      ok: [201, json(ref("PoolInfo"), "The new pool")],
      body: ref("PoolDefinition"),
    }),
  },
  "/v1/pools/{pool}": {
    get: operation("getPool", "One pool", {
      ok: [200, json(ref("PoolInfo"), "The pool")],
      parameters: [POOL],
    }),
    delete: operation("undefinePool", "Forget a pool; delete=1 also deletes its storage", {
      ok: NO_CONTENT,
      parameters: [
        POOL,
        queryParameter("delete", "1: delete the storage too", { enum: ["0", "1"] }),
      ],
    }),
  },
  "/v1/pools/{pool}/{action}": {
    post: operation("poolAction", "Build, start, stop or refresh a pool", {
      ok: [200, json(ref("PoolInfo"), "The pool")],
      parameters: [
        POOL,
        pathParameter("action", "What to do", [...POOL_ACTIONS]),
        queryParameter("overwrite", "build: 1 relabels a block device", { enum: ["0", "1"] }),
      ],
    }),
  },
  "/v1/pools/{pool}/autostart": {
    put: operation("setPoolAutostart", "Start the pool when the daemon starts, or not", {
      ok: [200, json(ref("PoolInfo"), "The pool")],
      body: ref("EnabledRequest"),
      parameters: [POOL],
    }),
  },
  "/v1/pools/{pool}/volumes": {
    get: operation("listVolumes", "The volumes of a pool", {
      ok: [200, json({ type: "array", items: ref("VolumeInfo") }, "The volumes")],
      parameters: [POOL],
    }),
    post: operation("createVolume", "Create, clone from a backing volume, or import a volume", {
      ok: [201, json(ref("VolumeInfo"), "The new volume")],
      body: ref("VolumeCreateRequest"),
      parameters: [POOL],
    }),
  },
  "/v1/pools/{pool}/volumes/{vol}": {
    get: operation("getVolume", "One volume", {
      ok: [200, json(ref("VolumeInfo"), "The volume")],
      parameters: [POOL, VOL],
    }),
    delete: operation("deleteVolume", "Delete a volume", {
      ok: NO_CONTENT,
      parameters: [POOL, VOL],
    }),
  },
  "/v1/pools/{pool}/volumes/{vol}/progress": {
    get: operation("getVolumeProgress", "What runs on a volume; how far a copy has come", {
      ok: [200, json(ref("VolumeProgress"), "The volume's current operation")],
      parameters: [POOL, VOL],
    }),
  },
  "/v1/pools/{pool}/volumes/{vol}/{action}": {
    post: operation(
      "volumeAction",
      "Wipe, resize, clone, snapshot, roll back, commit, convert or export",
      {
        ok: [200, json(ref("VolumeInfo"), "The volume (or the new one)")],
        body: ref("VolumeActionRequest"),
        parameters: [POOL, VOL, pathParameter("action", "What to do", [...VOLUME_ACTIONS])],
      },
    ),
  },
};

/** The OpenAPI 3.1 document of the daemon API. */
export const OPENAPI_DOCUMENT: Readonly<Record<string, unknown>> = {
  openapi: "3.1.0",
  info: {
    title: "Denovisor daemon API",
    version: VERSION,
    description:
      "HTTP+JSON on the daemon's unix socket (default /run/denovisor/api.sock, root only). " +
      "Errors are ApiErrorBody with the status of their code. Domain definitions are " +
      "documented in docs/domain.md.",
  },
  servers: [{ url: "http://localhost", description: "Over the unix socket" }],
  paths: {
    ...PATHS,
    ...savePaths(operation),
    ...migrationPaths(operation),
    ...farmPaths(operation),
  },
  components: {
    schemas: { ...SCHEMAS, ...SAVE_SCHEMAS, ...MIGRATION_SCHEMAS, ...FARM_SCHEMAS },
    responses: {
      Invalid: errorResponse("Malformed JSON, unknown fields, wrong types or impossible values"),
      Forbidden: errorResponse("The client may not use this socket"),
      NotFound: errorResponse("No such domain, pool, volume or path"),
      Conflict: errorResponse("Clashes with the current state (name taken, domain running...)"),
      Internal: errorResponse("The daemon failed; the message names what"),
      Timeout: errorResponse("A VMM did not answer in time"),
    },
  },
};
