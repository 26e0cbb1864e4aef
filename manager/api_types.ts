/**
 * The daemon's HTTP+JSON API as TypeScript types: the contract between `denovisor daemon`
 * (manager/daemon/), its clients (cli/, the REPL) and the OpenAPI description. Every
 * path is under `/v1`; bodies are JSON unless noted. Errors are `ApiErrorBody` with the
 * HTTP status named in `ApiErrorCode`.
 *
 * Domains
 *   GET    /v1/host                              -> HostInfo
 *   GET    /v1/domains                           -> DomainSummary[]
 *   POST   /v1/domains[?start=1&transient=1]     DomainDefinition -> DomainInfo (201)
 *   GET    /v1/domains/{name}                    -> DomainInfo
 *   PUT    /v1/domains/{name}                    DomainDefinition -> DomainInfo   (edit)
 *   DELETE /v1/domains/{name}                    -> 204                           (undefine)
 *   POST   /v1/domains/{name}/{action}[?host=H]  ActionRequest -> DomainInfo
 *            action: start | shutdown | destroy | reboot | reset | pause | resume
 *   GET    /v1/domains/{name}/stats              -> DomainStats
 *   POST   /v1/domains/{name}/save               SaveRequest -> SaveResult       (xl save)
 *   POST   /v1/restore                           RestoreRequest -> DomainInfo    (xl restore)
 *   GET    /v1/domains/{name}/snapshots          -> SnapshotInfo[]
 *   POST   /v1/domains/{name}/snapshots          SnapshotCreateRequest -> SnapshotInfo (201)
 *   GET    /v1/domains/{name}/snapshots/{snapshot}        -> SnapshotInfo
 *   DELETE /v1/domains/{name}/snapshots/{snapshot}        -> 204 (disk state merged)
 *   POST   /v1/domains/{name}/snapshots/{snapshot}/revert -> DomainInfo
 *   POST   /v1/domains/{name}/clone              CloneRequest -> DomainInfo[] (201)
 *   POST   /v1/domains/{name}/migrate            MigrateRequest -> MigrationResult (xl migrate)
 *   POST   /v1/domains/{name}/migrate-abort      -> MigrationProgress (the one stopped)
 *   GET    /v1/domains/{name}/logs[?lines=N]     -> text/plain
 *   GET    /v1/domains/{name}/console            Upgrade: denovisor-console -> 101, then the console
 *   PUT    /v1/domains/{name}/memory             { targetBytes } -> DomainInfo   (mem-set)
 *   PUT    /v1/domains/{name}/vcpus              { count } -> DomainInfo         (vcpu-set)
 *   PUT    /v1/domains/{name}/autostart          { enabled } -> DomainInfo
 *   GET    /v1/events                            -> application/x-ndjson stream of DomainEvent
 *   GET    /v1/openapi.json                      -> the OpenAPI 3.1 description
 * Farm (manager/farm/farm_api.ts; a daemon started with --etcd, else 404)
 *   GET    /v1/farm                              -> FarmStatus
 *   GET    /v1/farm/hosts[?all=1]                -> FarmHost[] (all=1: down members too)
 *   GET    /v1/farm/hosts/{host}                 -> FarmHostInfo
 *   DELETE /v1/farm/hosts/{host}                 -> 204 (a member that is down, running nothing)
 *   GET    /v1/farm/events[?limit=N]             -> EventRecord[]
 *   PUT    /v1/farm/hosts/{host}/maintenance     { enabled } -> FarmHost
 *   POST   /v1/farm/hosts/{host}/evacuate[?progress=1] -> EvacuationStep[] (NDJSON steps)
 * Storage (storage/pool/ behind manager/daemon/)
 *   GET    /v1/pools                             -> PoolInfo[]
 *   POST   /v1/pools                             PoolDefinition -> PoolInfo (201)
 *   GET    /v1/pools/{pool}                      -> PoolInfo
 *   DELETE /v1/pools/{pool}[?delete=1]           -> 204 (undefine; delete=1 also deletes)
 *   POST   /v1/pools/{pool}/{action}             -> PoolInfo; action: build | start | stop | refresh
 *                                                  | snapshot | rollback (snapshot { target } and
 *                                                  rollback { snapshot }: every volume of the pool;
 *                                                  build?overwrite=1 relabels a block device)
 *   PUT    /v1/pools/{pool}/autostart            { enabled } -> PoolInfo
 *   GET    /v1/pools/{pool}/volumes              -> VolumeInfo[]
 *   POST   /v1/pools/{pool}/volumes              VolumeCreateRequest -> VolumeInfo (201)
 *   GET    /v1/pools/{pool}/volumes/{vol}        -> VolumeInfo
 *   DELETE /v1/pools/{pool}/volumes/{vol}        -> 204
 *   POST   /v1/pools/{pool}/volumes/{vol}/{action}  VolumeActionRequest -> VolumeInfo
 *            action: wipe | resize | clone | snapshot | rollback | commit | delete-snapshot
 *                    | convert | export          (import is POST .../volumes with `import`)
 *   GET    /v1/pools/{pool}/volumes/{vol}/progress  -> VolumeProgress (a copy under way)
 *
 * @module
 */

export type {
  ConsoleKind,
  DomainAction,
  DomainState,
  ImageFormat,
  LifecycleAction,
  Transport,
} from "../common/enums.ts";
import type { DomainState } from "../common/enums.ts";
import type { Static } from "../common/schema.ts";
import type * as schema from "./api_schema.ts";
import type * as answers from "./api_answer_schema.ts";

/** A token-bucket limit in the `--disk`/`--nic` syntax: "bw=10M,ops=1000". */
export type RateLimitSpec = string;

/** A disk: a pool volume or a plain path. Exactly one of `volume` (with `pool`) or `path`. */
export type DiskDefinition = Static<typeof schema.DiskDefinition>;

/** A NIC: a tap ("auto", the default, is one the VMM creates and removes), a bridge, a MAC. */
export type NicDefinition = Static<typeof schema.NicDefinition>;

/** Boot either a kernel (bzImage, vmlinux or PVH ELF), the embedded demo guest or firmware. */
export type BootDefinition = Static<typeof schema.BootDefinition>;

/**
 * A domain as the user writes it (the JSON file given to `define`/`create`, documented in
 * docs/domain.md). Unknown fields are refused. Sizes are bytes or strings with units
 * ("512M"); a bare number for `memory` is MiB, as in xl.cfg. The schema, with each
 * field's description, is `DomainDefinition` in manager/api_schema.ts.
 */
export type DomainDefinition = Static<typeof schema.DomainDefinition>;

/** Sandbox settings of a domain beyond on and off. */
export type SandboxDefinition = Static<typeof schema.SandboxDefinition>;

/** A domain in GET /v1/domains (manager/api_answer_schema.ts has each field's description). */
export type DomainSummary = Static<typeof answers.DomainSummary>;

/** One domain in detail: the definition with defaults filled in, its run, its log. */
export type DomainInfo = Static<typeof answers.DomainInfo>;

/** POST /v1/domains/{name}/migrate (manager/api_schema.ts). */
export type MigrateRequest = Static<typeof schema.MigrateRequest>;

/** A migration under way, as the daemon relaying it sees it. */
export interface MigrationProgress {
  direction: "outgoing" | "incoming";
  /** The other daemon (`HOST:PORT` dialled, or the address the source came from). */
  peer: string;
  startedAt: string;
  /** Pre-copy round (0: the first full pass). */
  iteration: number;
  /** Bytes relayed towards the destination so far. */
  bytesSent: number;
  /** Bytes dirtied during the last round: what is left to send. */
  remainingBytes: number;
  /** Bytes per second dirtied during the last round. */
  dirtyRate: number;
  /** Bytes per second the link carried during the last round. */
  bandwidth: number;
  /** How long the switch-over would pause the guest now, in ms. */
  expectedDowntimeMs: number;
  /**
   * Auto-converge: the share of time the source keeps the guest's vCPUs paused because
   * it dirties memory faster than the link carries it (0: not throttled).
   */
  throttlePercent: number;
  /** "copying" while pre-copying, "switch-over" once the state went out. */
  phase: "connecting" | "copying" | "switch-over";
}

/** The answer of a completed migration (the guest runs on the destination). */
export interface MigrationResult {
  domain: string;
  dest: string;
  iterations: number;
  bytesSent: number;
  totalMs: number;
  /** From pause to the destination's ACK, as the source saw it. */
  downtimeMs: number;
  /**
   * Where the downtime went, in ms: pausing, the last dirty pages, the state document, the
   * disks let go, and the destination's restore and resume up to its ACK.
   */
  switchOver?: {
    pause: number;
    lastPages: number;
    state: number;
    disks: number;
    destination: number;
  };
}

/** POST /v1/domains/{name}/{action}'s options (manager/api_schema.ts). */
export type ActionRequest = Static<typeof schema.ActionRequest>;
/** PUT /v1/domains/{name}/memory. */
export type MemoryRequest = Static<typeof schema.MemoryRequest>;
/** PUT /v1/domains/{name}/vcpus. */
export type VcpusRequest = Static<typeof schema.VcpusRequest>;
/** PUT /v1/domains/{name}/autostart and /v1/pools/{pool}/autostart. */
export type EnabledRequest = Static<typeof schema.EnabledRequest>;

export type { DiskStats, DomainStats, NicStats, VcpuStats } from "../vmm/domain_stats.ts";

/** POST /v1/domains/{name}/save: the domain's state to a file (docs/state-format.md). */
export type SaveRequest = Static<typeof schema.SaveRequest>;

/** What a save wrote. */
export interface SaveResult {
  domain: string;
  stateFile: string;
  memoryFile: string;
  /** The definition saved beside the state file, which restore reads. */
  definitionFile: string;
  stateBytes: number;
  /** Guest RAM bytes actually written (zero pages are holes). */
  memoryDataBytes: number;
  /** How long the guest was paused for the save. */
  pausedMs: number;
  /** Whether the domain still runs (keep). */
  kept: boolean;
}

/** POST /v1/restore: a new VMM from a saved state. */
export type RestoreRequest = Static<typeof schema.RestoreRequest>;

/** One disk captured by a domain snapshot: a pool volume with a snapshot of the same name. */
export interface SnapshotDisk {
  /** The disk's name in the guest's order (vda, vdb...). */
  id: string;
  pool: string;
  volume: string;
}

/** A domain snapshot (stored under `<stateDir>/snapshots/<domain>/<name>/`). */
export interface SnapshotInfo {
  name: string;
  domain: string;
  /** ISO 8601. */
  createdAt: string;
  description?: string;
  /** The domain's state when it was taken: running and paused ones carry memory. */
  domainState: DomainState;
  /** Whether the snapshot holds the guest's memory and devices (not disk-only, not offline). */
  memory: boolean;
  disks: SnapshotDisk[];
  /** The snapshot the domain was at when this one was taken. */
  parent?: string;
  /** Whether the domain was last taken at or reverted to this snapshot. */
  current?: boolean;
  stateBytes?: number;
  memoryDataBytes?: number;
}

/** POST /v1/domains/{name}/snapshots. */
export type SnapshotCreateRequest = Static<typeof schema.SnapshotCreateRequest>;

/** POST /v1/domains/{name}/clone. */
export type CloneRequest = Static<typeof schema.CloneRequest>;

export type DomainEventKind = typeof answers.DOMAIN_EVENT_KINDS[number];

/**
 * How `lastEnd` and the "destroyed" event's detail begin when a guest did not power off
 * within a shutdown's timeout and the daemon forced it off, so clients can tell it from
 * a clean power-off or a destroy by request.
 */
export const FORCED_SHUTDOWN_END = "forced off after the shutdown timeout";

/**
 * The header of GET /v1/domains/{name}/logs that says whether the log has output before
 * the lines sent: "some" or "0".
 */
export const LOG_EARLIER_HEADER = "x-denovisor-log-earlier";

/** One line of GET /v1/events. */
export type DomainEvent = Static<typeof answers.DomainEvent>;

/** GET /v1/host. */
export type HostInfo = Static<typeof answers.HostInfo>;

/** Storage pools and volumes: storage defines them (storage/pool/pool_types.ts). */
export type {
  PoolDefinition,
  PoolInfo,
  PoolType,
  VolumeActionRequest,
  VolumeCreateRequest,
  VolumeInfo,
  VolumeProgress,
} from "../storage/pool/pool_types.ts";

/**
 * Error codes and the HTTP status each comes with: common/errors.ts's one table, under
 * the API's names.
 */
export { HTTP_STATUS as API_ERROR_STATUS } from "../common/errors.ts";
export type { ErrorCode as ApiErrorCode } from "../common/errors.ts";
export type { ErrorBody as ApiErrorBody } from "../common/http/mod.ts";
