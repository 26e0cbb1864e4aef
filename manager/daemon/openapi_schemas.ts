/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the API types in manager/api_types.ts,
 * for the OpenAPI description (openapi.ts). Keep them in step with the TypeScript types;
 * openapi_test.ts checks the field lists against sample values of those types.
 *
 * @module
 */

import {
  CONSOLE_KINDS,
  DOMAIN_STATES,
  IMAGE_FORMATS,
  LIFECYCLE_ACTIONS,
  TRANSPORTS,
} from "../../common/enums.ts";
import { ERROR_CODES } from "../../common/errors.ts";
import { boolean, integer, object, ref, type Schema, string } from "./openapi_builders.ts";
import { MAX_DISK_SERIAL_LENGTH, OBJECT_NAME_PATTERN } from "../../common/validators.ts";

const size: Schema = {
  description: 'Bytes, or a string with a unit such as "10G"',
  oneOf: [integer, string],
};
const rateLimit: Schema = {
  type: "string",
  description:
    'Token-bucket limit: "bw=10M,ops=1000[,bw_burst=SIZE][,ops_burst=N]" or Firecracker\'s JSON',
  examples: ["bw=10M,ops=1000"],
};

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
};

const poolDefinition = {
  name: string,
  type: { enum: ["dir", "btrfs", "block", "shared"] },
  path: string,
  autostart: boolean,
};

/** Every schema of the API, by type name. */
export const SCHEMAS: Record<string, Schema> = {
  LifecycleAction: { enum: [...LIFECYCLE_ACTIONS] },
  Transport: { enum: [...TRANSPORTS] },
  DomainState: { enum: [...DOMAIN_STATES] },
  DiskDefinition: object({
    pool: { type: "string", description: 'Defaults to "default" when volume is given' },
    volume: string,
    path: { type: "string", description: "Absolute host path; exclusive with volume" },
    format: { enum: [...IMAGE_FORMATS], description: "Probed from the image when omitted" },
    readOnly: boolean,
    serial: { type: "string", maxLength: MAX_DISK_SERIAL_LENGTH },
    transport: ref("Transport"),
    rateLimit,
    bus: { enum: ["virtio", "sata"], description: "sata: on the AHCI controller (firmware boot)" },
  }),
  NicDefinition: object({
    tap: { type: "string", description: 'A tap name, or "auto" (default)' },
    bridge: string,
    mac: {
      type: "string",
      pattern: "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$",
      description: "Generated (52:54:00 prefix, stable per uuid and index) when omitted",
    },
    transport: ref("Transport"),
    rateLimit,
  }),
  BootDefinition: {
    oneOf: [
      object({ kernel: string, initrd: string, cmdline: string }, ["kernel"]),
      object({ demo: { const: true } }, ["demo"]),
      object({
        firmware: { type: "string", description: '"seabios" or the path of a BIOS image' },
        order: { type: "array", items: { enum: ["disk", "cdrom"] } },
      }, ["firmware"]),
    ],
  },
  DomainDefinition: object(
    {
      name: { type: "string", pattern: OBJECT_NAME_PATTERN.source },
      uuid: { type: "string", format: "uuid" },
      vcpus: { type: "integer", minimum: 1, maximum: 254 },
      memory: {
        description: 'A bare number is MiB (as in xl.cfg); or a size string such as "512M"',
        oneOf: [{ type: "integer", minimum: 16 }, string],
      },
      boot: ref("BootDefinition"),
      disks: { type: "array", items: ref("DiskDefinition") },
      cdroms: {
        type: "array",
        items: string,
        description: "ISO images on AHCI CD-ROM drives; firmware boot only",
      },
      nics: { type: "array", items: ref("NicDefinition") },
      rng: { oneOf: [boolean, object({ rateLimit })] },
      balloon: boolean,
      console: { enum: [...CONSOLE_KINDS] },
      onPoweroff: ref("LifecycleAction"),
      onReboot: ref("LifecycleAction"),
      onCrash: ref("LifecycleAction"),
      autostart: boolean,
      ha: { type: "boolean", description: "In a farm: restart elsewhere when the host is lost" },
      placement: object({
        host: string,
        labels: { type: "object", additionalProperties: string },
        antiAffinity: string,
      }),
      sandbox: {
        description: "The VMM's confinement (README, security); false turns it off",
        oneOf: [boolean, object({ seccomp: { enum: ["strict", "log", "off"] } })],
      },
      cpu: object(
        {
          weight: { type: "integer", minimum: 1, maximum: 10000, description: "default 100" },
          max: { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?%$", description: 'e.g. "50%"' },
        },
        [],
        { description: "The VMM's CPU share in its cgroup" },
      ),
    },
    ["name", "boot"],
    { description: "Documented in docs/domain.md; unknown fields are refused" },
  ),
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
  ActionRequest: object({
    timeoutSeconds: { type: "number", minimum: 0, description: "shutdown: default 60" },
    wait: { type: "boolean", description: "shutdown, reboot: answer when done (default true)" },
  }),
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
  PoolDefinition: object(poolDefinition, ["name", "type", "path"]),
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
  VolumeCreateRequest: object({
    name: string,
    format: { enum: [...IMAGE_FORMATS] },
    size,
    preallocation: { enum: ["off", "metadata", "full"] },
    backingVolume: string,
    import: { type: "string", description: "Copy this host file into the pool" },
  }, ["name"]),
  VolumeActionRequest: object({
    size,
    force: boolean,
    target: string,
    mode: { enum: ["full", "linked"] },
    format: { enum: [...IMAGE_FORMATS] },
    snapshot: string,
  }),
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
