import assert from "node:assert/strict";
import type {
  ActionRequest,
  CloneRequest,
  DiskDefinition,
  DomainDefinition,
  DomainEvent,
  DomainInfo,
  DomainStats,
  HostInfo,
  MigrateRequest,
  MigrationResult,
  NicDefinition,
  PoolInfo,
  RestoreRequest,
  SaveRequest,
  SaveResult,
  SnapshotCreateRequest,
  SnapshotInfo,
  VolumeActionRequest,
  VolumeCreateRequest,
  VolumeInfo,
} from "../api_types.ts";
import { OPENAPI_DOCUMENT } from "./openapi.ts";

type Json = Record<string, unknown>;

interface Endpoint {
  method: string;
  path: string;
  query: string[];
  actions: string[];
  types: string[];
}

/** The endpoints listed in the header comment of manager/api_types.ts. */
async function documentedEndpoints(): Promise<Endpoint[]> {
  const source = await Deno.readTextFile(new URL("../api_types.ts", import.meta.url));
  const header = source.slice(0, source.indexOf("*/"));
  const endpoints: Endpoint[] = [];
  for (const line of header.split("\n").map((l) => l.replace(/^\s*\*\s?/, ""))) {
    const match = /^\s*(GET|POST|PUT|DELETE)\s+(\S+)(.*)$/.exec(line);
    const rest = match?.[3] ?? line;
    if (match) {
      const [, method, raw] = match;
      const query = /\[\?([^\]]+)\]/.exec(raw)?.[1].split("&").map((p) => p.split("=")[0]) ?? [];
      endpoints.push({ method, path: raw.replace(/\[.*\]/, ""), query, actions: [], types: [] });
    }
    const current = endpoints.at(-1);
    if (!current) continue;
    current.types.push(...(rest.match(/\b[A-Z][a-z]+[A-Z][A-Za-z]*\b/g) ?? []));
    const actions = /action:\s*([^(;]*)/.exec(rest)?.[1] ??
      (/^\s*\|/.test(rest) ? rest.replace(/\(.*$/, "") : undefined);
    if (actions !== undefined) {
      current.actions.push(...actions.split("|").map((a) => a.trim()).filter((a) => a !== ""));
    }
  }
  return endpoints;
}

const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, Json>>;
const schemas = (OPENAPI_DOCUMENT.components as Json).schemas as Record<string, Json>;

Deno.test("OPENAPI_DOCUMENT describes every endpoint in the header of api_types.ts", async () => {
  const endpoints = await documentedEndpoints();
  assert.ok(endpoints.length >= 25, `only ${endpoints.length} endpoints parsed`);
  for (const { method, path, query, actions } of endpoints) {
    const operation = paths[path]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${path} is missing from the OpenAPI document`);
    const parameters = (operation.parameters ?? []) as Json[];
    for (const name of path.match(/\{(\w+)\}/g)?.map((p) => p.slice(1, -1)) ?? []) {
      assert.ok(
        parameters.some((p) => p.in === "path" && p.name === name),
        `${method} ${path}: no path parameter ${name}`,
      );
    }
    for (const name of query) {
      assert.ok(
        parameters.some((p) => p.in === "query" && p.name === name),
        `${method} ${path}: no query parameter ${name}`,
      );
    }
    if (actions.length > 0) {
      const action = parameters.find((p) => p.name === "action");
      assert.deepEqual((action?.schema as Json).enum, actions, `${method} ${path}: actions`);
    }
  }
});

Deno.test("OPENAPI_DOCUMENT has no endpoint the header of api_types.ts does not list", async () => {
  const listed = new Set((await documentedEndpoints()).map((e) => `${e.method} ${e.path}`));
  for (const [path, operations] of Object.entries(paths)) {
    for (const method of Object.keys(operations)) {
      assert.ok(
        listed.has(`${method.toUpperCase()} ${path}`),
        `${method} ${path} is not in api_types.ts`,
      );
    }
  }
});

Deno.test("OPENAPI_DOCUMENT has a schema for every type the header names, and every $ref resolves", async () => {
  for (const { types } of await documentedEndpoints()) {
    for (const type of types.filter((t) => t !== "OpenAPI")) {
      assert.ok(schemas[type], `no schema for ${type}`);
    }
  }
  const refs = JSON.stringify(OPENAPI_DOCUMENT).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 50);
  for (const ref of refs) {
    const path = ref.slice(8, -1).replace(/^#\//, "").split("/");
    let node: unknown = OPENAPI_DOCUMENT;
    for (const key of path) node = (node as Json)?.[key];
    assert.ok(node, `${ref} does not resolve`);
  }
  assert.equal(OPENAPI_DOCUMENT.openapi, "3.1.0");
});

/** Every field of each type, checked by the compiler through `Required<T>`. */
const SAMPLES: Record<string, Json> = {
  DiskDefinition: {
    pool: "",
    volume: "",
    path: "",
    format: "raw",
    readOnly: false,
    serial: "",
    transport: "pci",
    rateLimit: "",
    bus: "sata",
  } satisfies Required<DiskDefinition>,
  NicDefinition: {
    tap: "",
    bridge: "",
    mac: "",
    transport: "pci",
    rateLimit: "",
  } satisfies Required<NicDefinition>,
  DomainDefinition: {
    name: "",
    uuid: "",
    vcpus: 1,
    memory: 1,
    boot: { demo: true },
    disks: [],
    cdroms: [],
    nics: [],
    rng: false,
    balloon: false,
    console: "serial",
    onPoweroff: "destroy",
    onReboot: "destroy",
    onCrash: "destroy",
    autostart: false,
    ha: false,
    placement: {},
    sandbox: true,
    cpu: {},
  } satisfies Required<DomainDefinition>,
  DomainInfo: {
    name: "",
    uuid: "",
    state: "running",
    vcpus: 1,
    memoryBytes: 1,
    autostart: false,
    persistent: true,
    pid: 1,
    id: 1,
    host: "",
    next: { vcpus: 2 },
    definition: { name: "", boot: { demo: true } },
    startedAt: "",
    lastEnd: "",
    consoleSocket: "",
    logFile: "",
    note: "",
    migration: {
      direction: "outgoing",
      peer: "",
      startedAt: "",
      iteration: 0,
      bytesSent: 0,
      remainingBytes: 0,
      dirtyRate: 0,
      bandwidth: 0,
      expectedDowntimeMs: 0,
      throttlePercent: 0,
      phase: "copying",
    },
  } satisfies Required<DomainInfo>,
  ActionRequest: { timeoutSeconds: 1, wait: true } satisfies Required<ActionRequest>,
  DomainStats: {
    name: "",
    state: "running",
    vcpus: [],
    memory: { guestBytes: 0, availableBytes: 0, balloonBytes: 0, rssBytes: 0 },
    disks: [],
    nics: [],
    cgroup: { memoryBytes: 0, memoryLimitBytes: 0, oomKills: 0, pids: 0 },
  } satisfies Required<DomainStats>,
  DomainEvent: { time: "", domain: "", kind: "started", detail: "" } satisfies Required<
    DomainEvent
  >,
  HostInfo: {
    version: "",
    hostname: "",
    cpus: 1,
    memoryBytes: 1,
    domainsDefined: 0,
    domainsRunning: 0,
    stateDir: "",
    socket: "",
  } satisfies Required<HostInfo>,
  PoolInfo: {
    name: "",
    type: "dir",
    path: "",
    autostart: false,
    state: "active",
    shared: false,
    capacityBytes: 0,
    allocationBytes: 0,
    availableBytes: 0,
    volumes: 0,
    skipped: [""],
  } satisfies Required<PoolInfo>,
  VolumeInfo: {
    pool: "",
    name: "",
    path: "",
    format: "raw",
    virtualSize: 0,
    allocatedSize: 0,
    backingChain: [],
    snapshots: [],
    usedBy: "",
  } satisfies Required<VolumeInfo>,
  VolumeCreateRequest: {
    name: "",
    format: "raw",
    size: 1,
    preallocation: "off",
    backingVolume: "",
    import: "",
  } satisfies Required<VolumeCreateRequest>,
  VolumeActionRequest: {
    size: 1,
    force: false,
    target: "",
    mode: "full",
    format: "raw",
    snapshot: "",
    dropNewer: false,
  } satisfies Required<VolumeActionRequest>,
  SaveRequest: { file: "", keep: false } satisfies Required<SaveRequest>,
  SaveResult: {
    domain: "",
    stateFile: "",
    memoryFile: "",
    definitionFile: "",
    stateBytes: 0,
    memoryDataBytes: 0,
    pausedMs: 0,
    kept: false,
  } satisfies Required<SaveResult>,
  RestoreRequest: { file: "", paused: false, name: "", force: false } satisfies Required<
    RestoreRequest
  >,
  SnapshotInfo: {
    name: "",
    domain: "",
    createdAt: "",
    description: "",
    domainState: "running",
    memory: true,
    disks: [],
    parent: "",
    current: false,
    stateBytes: 0,
    memoryDataBytes: 0,
  } satisfies Required<SnapshotInfo>,
  SnapshotCreateRequest: { name: "", diskOnly: false, description: "" } satisfies Required<
    SnapshotCreateRequest
  >,
  CloneRequest: { name: "", count: 1, snapshot: "", start: false } satisfies Required<
    CloneRequest
  >,
  MigrateRequest: {
    dest: "",
    maxDowntimeMs: 0,
    bandwidth: 0,
    timeoutS: 1,
    offline: false,
    wait: true,
  } satisfies Required<MigrateRequest>,
  MigrationResult: {
    domain: "",
    dest: "",
    iterations: 0,
    bytesSent: 0,
    totalMs: 0,
    downtimeMs: 0,
    switchOver: { pause: 0, lastPages: 0, state: 0, disks: 0, destination: 0 },
  } satisfies Required<MigrationResult>,
};

Deno.test("OPENAPI_DOCUMENT schemas have exactly the fields of the TypeScript types", () => {
  for (const [type, sample] of Object.entries(SAMPLES)) {
    const properties = Object.keys(schemas[type].properties as Json).sort();
    assert.deepEqual(properties, Object.keys(sample).sort(), type);
  }
});
