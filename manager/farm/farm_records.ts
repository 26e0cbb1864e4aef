/**
 * What the farm keeps in etcd, under one prefix per farm (`/denovisor/farms/<farm>/`):
 *
 *   hosts/<host>        HostRecord, bound to the host's lease (gone when the host is lost)
 *   members/<host>      HostRecord as of its last join, no lease: the farm remembers a
 *                       host that is down until `host remove` forgets it
 *   maintenance/<host>  "on" while no new domains may be placed there (any host sets it)
 *   definitions/<dom>   the DomainDefinition, farm-wide
 *   owners/<dom>        OwnerRecord: the host running the domain, bound to that host's
 *                       lease; created only by txn (create revision 0), released only by
 *                       txn on its mod revision
 *   intents/<dom>       IntentRecord: "start this domain on that host" (placement and
 *                       evacuation), acted on by the hosts that watch it
 *   locks/ha/<dom>      the HA restart of a lost domain, taken by txn by one daemon
 *   pools/<pool>        shared pools: the pool definition every host mounts the same way
 *   events/<time>-<host>-<n>  EventRecord, pruned after a day
 *
 * @module
 */

/** A host of the farm, as its daemon publishes it. */
export interface HostRecord {
  name: string;
  /** Where people and tools reach it (--host-address), e.g. "10.0.0.5". */
  address: string;
  /** What it offers to the farm. */
  capacity: { memoryBytes: number; vcpus: number };
  /** Labels placement rules match, e.g. {"rack": "a"}. */
  labels: Record<string, string>;
  /** The pools active on the host (placement needs the pools of a domain's disks). */
  pools?: string[];
  /** The migration listener (ADDR:PORT), when it has one. */
  migrationListen?: string;
  /** The state of each domain running there (running, paused...), as of its last reconcile. */
  domainStates?: Record<string, string>;
  version: string;
  joinedAt: string;
  updatedAt: string;
}

/** The owner of a running domain. */
export interface OwnerRecord {
  host: string;
  since: string;
  /** The daemon stopped cleanly and left the domain running without a lease. */
  detached?: boolean;
}

/** A request that a host start a domain (or take it from another host, or stop it). */
export interface IntentRecord {
  id: string;
  /** The host that should run the domain; "" when the domain is only to stop. */
  host: string;
  /** The host that must stop it first (evacuation, stop), if any. */
  from?: string;
  /** How `from` stops it: "shutdown" (default; destroyed after 30 s) or "destroy". */
  stop?: "shutdown" | "destroy";
  /**
   * A live move: `from` migrates the running guest to `host` (its migration listener)
   * instead of stopping it; the fields are POST /v1/domains/{name}/migrate's options.
   */
  live?: { maxDowntimeMs?: number; bandwidth?: number; timeoutS?: number; offline?: boolean };
  /** The target of a live move is ready to receive (it dropped its idle mirror copy). */
  ready?: boolean;
  /** A request for the `from` host's own domain routes (farm_forward.ts); host is "". */
  forward?: { method: string; path: string; body?: unknown };
  /** What the live move measured (MigrationResult), or the forwarded request's answer. */
  result?: unknown;
  reason: string;
  requestedBy: string;
  at: string;
  status: "pending" | "done" | "failed";
  error?: string;
}

/** One farm event. */
export interface EventRecord {
  time: string;
  host: string;
  kind: string;
  domain?: string;
  detail?: string;
}

/** The key layout of one farm. */
export class FarmKeys {
  readonly root: string;

  constructor(farm: string) {
    this.root = `/denovisor/farms/${farm}/`;
  }

  get hosts(): string {
    return `${this.root}hosts/`;
  }
  host(name: string): string {
    return `${this.hosts}${name}`;
  }
  get members(): string {
    return `${this.root}members/`;
  }
  member(name: string): string {
    return `${this.members}${name}`;
  }
  get maintenance(): string {
    return `${this.root}maintenance/`;
  }
  get definitions(): string {
    return `${this.root}definitions/`;
  }
  definition(domain: string): string {
    return `${this.definitions}${domain}`;
  }
  get owners(): string {
    return `${this.root}owners/`;
  }
  owner(domain: string): string {
    return `${this.owners}${domain}`;
  }
  get intents(): string {
    return `${this.root}intents/`;
  }
  intent(domain: string): string {
    return `${this.intents}${domain}`;
  }
  haLock(domain: string): string {
    return `${this.root}locks/ha/${domain}`;
  }
  get pools(): string {
    return `${this.root}pools/`;
  }
  get events(): string {
    return `${this.root}events/`;
  }
  /** The last path segment of `key` under `prefix`. */
  name(key: string, prefix: string): string {
    return key.slice(prefix.length);
  }
}

/** JSON.parse for records read from etcd: a damaged value is undefined, not a crash. */
export function parseRecord<T>(value: string): T | undefined {
  try {
    const parsed = JSON.parse(value);
    return typeof parsed === "object" && parsed !== null ? parsed as T : undefined;
  } catch {
    return undefined;
  }
}
