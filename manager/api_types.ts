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
 *   POST   /v1/domains/{name}/{action}           ActionRequest -> DomainInfo
 *            action: start | shutdown | destroy | reboot | pause | resume
 *   GET    /v1/domains/{name}/stats              -> DomainStats
 *   GET    /v1/domains/{name}/logs[?lines=N]     -> text/plain
 *   PUT    /v1/domains/{name}/memory             { targetBytes } -> DomainInfo   (mem-set)
 *   PUT    /v1/domains/{name}/vcpus              { count } -> DomainInfo         (vcpu-set)
 *   PUT    /v1/domains/{name}/autostart          { enabled } -> DomainInfo
 *   GET    /v1/events                            -> application/x-ndjson stream of DomainEvent
 *   GET    /v1/openapi.json                      -> the OpenAPI 3.1 description
 * Storage (storage/pool/ behind manager/daemon/)
 *   GET    /v1/pools                             -> PoolInfo[]
 *   POST   /v1/pools                             PoolDefinition -> PoolInfo (201)
 *   GET    /v1/pools/{pool}                      -> PoolInfo
 *   DELETE /v1/pools/{pool}[?delete=1]           -> 204 (undefine; delete=1 also deletes)
 *   POST   /v1/pools/{pool}/{action}             -> PoolInfo; action: build | start | stop | refresh
 *                                                  (build?overwrite=1 relabels a block device)
 *            also snapshot { target } and rollback { snapshot }: every volume of the pool
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
import type {
  ConsoleKind,
  DomainState,
  ImageFormat,
  LifecycleAction,
  Transport,
} from "../common/enums.ts";

/** A token-bucket limit in the `--disk`/`--nic` syntax: "bw=10M,ops=1000". */
export type RateLimitSpec = string;

/** A disk: a pool volume or a plain path. Exactly one of `volume` (with `pool`) or `path`. */
export interface DiskDefinition {
  /** Pool name; defaults to "default" when `volume` is given. */
  pool?: string;
  volume?: string;
  path?: string;
  /** "raw" or "qcow2"; probed from the image when omitted (a probed raw stays raw). */
  format?: ImageFormat;
  readOnly?: boolean;
  serial?: string;
  transport?: Transport;
  rateLimit?: RateLimitSpec;
}

export interface NicDefinition {
  /** A tap name, or "auto" (default) for one the VMM creates and removes. */
  tap?: string;
  bridge?: string;
  /** Generated (52:54:00 prefix, stable per domain uuid and index) when omitted. */
  mac?: string;
  transport?: Transport;
  rateLimit?: RateLimitSpec;
}

/** Boot either a kernel (bzImage, vmlinux or PVH ELF) or the embedded demo guest. */
export type BootDefinition =
  | { kernel: string; initrd?: string; cmdline?: string }
  | { demo: true };

/**
 * A domain as the user writes it (the JSON file given to `define`/`create`, documented in
 * docs/domain.md). Unknown fields are refused. Sizes are bytes or strings with units
 * ("512M"); a bare number for `memory` is MiB, as in xl.cfg.
 */
export interface DomainDefinition {
  name: string;
  uuid?: string;
  vcpus?: number;
  memory?: number | string;
  boot: BootDefinition;
  disks?: DiskDefinition[];
  nics?: NicDefinition[];
  rng?: boolean | { rateLimit?: RateLimitSpec };
  balloon?: boolean;
  /**
   * The guest's console: "serial" (default), the 16550A on ttyS0; or "virtio", a virtio
   * console (hvc0) that takes the console input, beside the serial port, whose output is
   * logged too.
   */
  console?: ConsoleKind;
  onPoweroff?: LifecycleAction;
  onReboot?: LifecycleAction;
  onCrash?: LifecycleAction;
  autostart?: boolean;
}

export interface DomainSummary {
  name: string;
  uuid: string;
  state: DomainState;
  vcpus: number;
  memoryBytes: number;
  autostart: boolean;
  /** False for a domain made by `create` without `define`: it vanishes when it stops. */
  persistent: boolean;
  /** The VMM process, while there is one. */
  pid?: number;
}

export interface DomainInfo extends DomainSummary {
  /** The definition with defaults filled in (uuid, MACs, actions). */
  definition: DomainDefinition;
  /** When the current VMM started (ISO 8601). */
  startedAt?: string;
  /** Why the last run ended, in words, e.g. "guest powered off", "VMM killed by SIGKILL". */
  lastEnd?: string;
  /** The VMM's console socket (see vmm/vmm_config.ts) while running. */
  consoleSocket?: string;
  /** The file that collects the serial console output and the VMM's log lines. */
  logFile: string;
  /** A remark on the request just answered, e.g. "the domain is running; the new vCPU
   *  count applies at its next start". */
  note?: string;
}

export interface ActionRequest {
  /** shutdown: seconds before the domain is destroyed if the guest ignores the request (default 60). */
  timeoutSeconds?: number;
  /** shutdown, reboot: answer only when done (default true). */
  wait?: boolean;
}

export type { DiskStats, DomainStats, NicStats, VcpuStats } from "../vmm/domain_stats.ts";

export type DomainEventKind =
  | "defined"
  | "undefined"
  | "started"
  | "paused"
  | "resumed"
  | "shutdown"
  | "rebooted"
  | "crashed"
  | "destroyed"
  | "stopped";

/** One line of GET /v1/events. */
export interface DomainEvent {
  /** ISO 8601. */
  time: string;
  domain: string;
  kind: DomainEventKind;
  /** Words for people: "guest powered off", "VMM killed by SIGKILL; on_crash=restart". */
  detail?: string;
}

export interface HostInfo {
  version: string;
  hostname: string;
  cpus: number;
  memoryBytes: number;
  domainsDefined: number;
  domainsRunning: number;
  stateDir: string;
  socket: string;
}

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
