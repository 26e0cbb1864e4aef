/**
 * A daemon in a farm: it joins (a lease, its host record), mirrors the farm's domain
 * definitions into its own domain table, owns the domains it runs through owner keys
 * claimed by transaction, and keeps etcd and its VMMs in agreement (`reconcile`, every
 * 2 s and after each rejoin): a domain running here without an owner key is claimed, one
 * whose key another host holds is destroyed here (that host is the truth), and an owner
 * key of this host whose domain no longer runs is released. Intents (start here; stop
 * here so another host can start it) and HA restarts are farm_intents.ts and farm_ha.ts.
 *
 * @module
 */

import type { DomainDefinition, DomainInfo } from "../api_types.ts";
import type { DomainManager } from "../daemon/domains.ts";
import type { EventHub } from "../daemon/events.ts";
import { ApiError } from "../../common/http/mod.ts";
import { VERSION } from "../../common/version.ts";
import { EtcdClient, type EtcdOptions } from "./etcd_client.ts";
import type { EtcdKv, Watch, WatchEvent } from "./etcd_types.ts";
import type { HostRecord, OwnerRecord } from "./farm_records.ts";
import { parseRecord } from "./farm_records.ts";
import { FarmStore, type Owned } from "./farm_store.ts";
import { MemberLease, MIN_TTL_SECONDS, readLeaseFile, writeLeaseFile } from "./farm_lease.ts";
import { mergeDefinitions, mirrorDefinition } from "./farm_definitions.ts";
import { activePools, type FarmPools, syncSharedPools } from "./farm_pools.ts";
import { place } from "./placement.ts";
import { FarmIntents } from "./farm_intents.ts";
import { FarmHa } from "./farm_ha.ts";
import type { DomainMigrations } from "../daemon/migration_ops.ts";

/** Default lease TTL: a lost host's HA domains restart within about TTL + 2 s. */
export const DEFAULT_LEASE_TTL_SECONDS = 6;
const RECONCILE_PERIOD_MS = 2000;

/** How a daemon joins a farm (`denovisor daemon --farm ...`). */
export interface FarmOptions {
  farm: string;
  etcd: EtcdOptions;
  hostName: string;
  hostAddress: string;
  labels?: Record<string, string>;
  /** What this host offers; default: its RAM less 10% (at most 1 GiB), 4 vCPUs per CPU. */
  memoryBytes?: number;
  vcpus?: number;
  migrationListen?: string;
  leaseTtlSeconds?: number;
  /** Extra wait after a host's lease expired before its HA domains restart (default 1 s). */
  haDelayMs?: number;
  /**
   * Where the daemon keeps its lease id (in its state directory), so that a daemon
   * restarted within the TTL (after a crash) takes its lease back instead of letting
   * it expire, which would make the other hosts restart its HA domains.
   */
  leaseFile?: string;
}

/** One daemon's membership of a farm. */
export class FarmMember {
  readonly store: FarmStore;
  readonly host: string;
  readonly domains: DomainManager;
  readonly intents: FarmIntents;
  readonly ha: FarmHa;
  readonly log: (line: string) => void;
  readonly #etcd: EtcdKv;
  readonly #options: FarmOptions;
  readonly #lease: MemberLease;
  readonly #record: HostRecord;
  /** domain -> owning host, as the last reconcile read it (listings use it, not etcd). */
  owners = new Map<string, string>();
  /** domain -> its state on the host running it, as that host last published it. */
  remoteStates = new Map<string, string>();
  /** Domains being started here right now (claimed, VMM not yet running). */
  readonly starting = new Set<string>();
  /** Domains migrating away from here: their owner key is handed over, never released. */
  readonly moving = new Set<string>();
  /** Domains migrating here: running here while another host still owns them. */
  readonly incoming = new Set<string>();
  /** This host's own domain routes, for requests forwarded by other hosts (farm_forward.ts). */
  local?: (request: Request) => Promise<Response>;
  /** This daemon's live migrations (undefined: it cannot move domains live). */
  readonly migrations?: DomainMigrations;
  /** Owner keys of this host seen without a running domain once (released the second time). */
  readonly #idleOwners = new Set<string>();
  #watch?: Watch;
  /** The highest revision the watch delivered (where a restarted watch resumes). */
  #seenRevision?: number;
  #reconcileTimer?: ReturnType<typeof setInterval>;
  #joined = false;
  #stopped = false;

  readonly #pools?: FarmPools;

  constructor(
    options: FarmOptions,
    domains: DomainManager,
    events: EventHub,
    log: (line: string) => void,
    pools?: FarmPools,
    migrations?: DomainMigrations,
  ) {
    this.#pools = pools;
    this.migrations = migrations;
    const ttl = options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    if (!(ttl >= MIN_TTL_SECONDS)) {
      throw new ApiError("invalid", `The farm lease TTL must be at least ${MIN_TTL_SECONDS} s`);
    }
    this.#options = { ...options, leaseTtlSeconds: ttl };
    this.#etcd = new EtcdClient(options.etcd);
    this.store = new FarmStore(this.#etcd, options.farm);
    this.host = options.hostName;
    this.domains = domains;
    this.log = (line) => log(`farm ${options.farm}: ${line}`);
    this.#lease = new MemberLease(this.#etcd, {
      ttlSeconds: ttl,
      onFence: () => this.ha.fence(),
      onLost: () => this.#rejoin(),
      onRecover: () => this.ha.recover(),
      log: this.log,
    });
    const total = Deno.systemMemoryInfo().total;
    this.#record = {
      name: options.hostName,
      address: options.hostAddress,
      capacity: {
        memoryBytes: options.memoryBytes ?? total - Math.min(2 ** 30, Math.floor(total / 10)),
        vcpus: options.vcpus ?? navigator.hardwareConcurrency * 4,
      },
      labels: options.labels ?? {},
      ...(options.migrationListen ? { migrationListen: options.migrationListen } : {}),
      version: VERSION,
      joinedAt: "",
      updatedAt: "",
    };
    this.intents = new FarmIntents(this);
    this.ha = new FarmHa(this, options.haDelayMs ?? 1000);
    // Local domain events become farm events (best effort: the farm may be unreachable).
    events.listen((event) => {
      // Definitions change on every host at once (the mirror): the farm routes record
      // those once, from the host that was asked.
      if (!this.#joined || event.kind === "defined" || event.kind === "undefined") return;
      this.store.event({
        host: this.host,
        kind: event.kind,
        domain: event.domain,
        detail: event.detail,
      })
        .catch(() => {});
    });
  }

  /** Whether the daemon has left the farm (stopped). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The lease this host's keys are bound to. */
  get lease(): string {
    return this.#lease.id;
  }

  /** Whether the host has fenced itself (lease not renewed) and not yet rejoined. */
  get fenced(): boolean {
    return this.#lease.fenced;
  }

  /** The farm's name. */
  get farm(): string {
    return this.#options.farm;
  }

  /** The farm's settings, for `farm status`. */
  get settings() {
    return {
      farm: this.#options.farm,
      host: this.host,
      leaseTtlSeconds: this.#options.leaseTtlSeconds!,
      fenceAfterSeconds: this.#lease.fenceAfterMs / 1000,
      haDelaySeconds: this.ha.delayMs / 1000,
    };
  }

  /**
   * Joins the farm: lease, host record, definitions merged both ways (a joining host
   * brings its own domains; the farm's appear here), owner keys reconciled, then the
   * watch and the periodic reconcile. Throws a 503 when etcd cannot be reached.
   */
  async join(): Promise<void> {
    const existing = await this.store.etcd.get(this.store.keys.host(this.host));
    const previous = await readLeaseFile(this.#options.leaseFile);
    if (existing !== undefined && existing.lease === previous) {
      if (await this.#lease.resume(previous)) {
        this.log(`took back the lease ${previous} of this host's previous daemon`);
      } else await this.#lease.grant();
    } else if (existing !== undefined && existing.lease !== "0") {
      throw new ApiError(
        "conflict",
        `Host '${this.host}' is already in farm '${this.#options.farm}' (another daemon holds ` +
          `its key); give this daemon another --host NAME`,
      );
    } else await this.#lease.grant();
    await writeLeaseFile(this.#options.leaseFile, this.lease, this.log);
    await this.#publish();
    await this.store.putMember(this.#record);
    // The watch replays from here: a definition (or intent, or owner key) written after
    // this revision while the join goes on reaches this host through the watch, instead of
    // falling between the reads below and the watch's start (mirroring is idempotent).
    const joinRevision = (await this.#etcd.list(this.store.keys.host(this.host))).revision;
    await mergeDefinitions(this);
    if (this.#pools) await syncSharedPools(this.store, this.#pools, this.log);
    this.#joined = true;
    await this.reconcile();
    this.#startWatch(joinRevision + 1);
    this.#reconcileTimer = setInterval(
      () => this.reconcile().catch((e) => this.log(`reconcile: ${e.message}`)),
      RECONCILE_PERIOD_MS,
    );
    await this.store.event({ host: this.host, kind: "joined", detail: this.#record.address });
    await this.#autostart();
    this.store.pruneEvents().catch(() => {});
    this.log(
      `joined as '${this.host}' (lease ${this.lease}, TTL ${this.#options.leaseTtlSeconds} s)`,
    );
  }

  /**
   * Leaves cleanly (daemon stop): the domains running here keep running and keep their
   * owner keys, re-written without a lease (so no host restarts them), then the lease
   * is revoked (the host key goes). A restarted daemon takes the keys back.
   */
  async leave(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#reconcileTimer);
    this.#watch?.close();
    this.#lease.stop();
    try {
      for (const held of await this.store.owners()) {
        if (held.owner.host !== this.host) continue;
        await this.store.rebind(held, { ...held.owner, detached: true });
      }
      await this.store.event({ host: this.host, kind: "left" });
      await this.#etcd.revoke(this.lease);
    } catch (error) {
      this.log(`leaving the farm: ${(error as Error).message}`);
    }
    this.#etcd.close();
  }

  /**
   * Starts `name` on this host: claims its owner key (409 when another host holds it),
   * then starts the VMM; a failed start gives the key back.
   */
  async startHere(name: string): Promise<DomainInfo> {
    this.domains.get(name);
    if (!this.#joined) {
      throw new ApiError(
        "unavailable",
        `Farm unavailable: this host has not joined farm '${this.#options.farm}' yet ` +
          `(etcd unreachable?); it starts no domain until it has`,
      );
    }
    if (this.fenced) {
      throw new ApiError(
        "unavailable",
        `Farm unavailable: this host cannot renew its farm lease, so it starts no domain; ` +
          `check etcd and the network`,
      );
    }
    this.starting.add(name);
    try {
      const claim = await this.store.claim(name, this.host, this.lease);
      if (!claim.ok) {
        const holder = claim.holder?.owner.host ?? "another host";
        throw new ApiError(
          "conflict",
          holder === this.host
            ? `Domain '${name}' is already running (or starting) on this host`
            : `Domain '${name}' runs on host '${holder}'; stop it there first`,
        );
      }
      try {
        await this.domains.locked(name, (entry) => this.domains.lifecycle.start(entry));
      } catch (error) {
        const held = await this.store.owner(name).catch(() => undefined);
        if (held?.owner.host === this.host) await this.store.release(held).catch(() => {});
        throw error;
      }
      return this.domains.info(name);
    } finally {
      this.starting.delete(name);
    }
  }

  /** Brings etcd's owner keys and this host's VMMs into agreement (see the module doc). */
  async reconcile(): Promise<void> {
    if (!this.#joined || this.#stopped || this.fenced) return;
    const owners = new Map((await this.store.owners()).map((o) => [o.domain, o]));
    this.owners = new Map([...owners.values()].map((o) => [o.domain, o.owner.host]));
    // The state each owner published for its domains (paused, running...), for listings.
    const hosts = await this.store.hosts();
    this.remoteStates = new Map(
      hosts.flatMap((h) => h.name === this.host ? [] : Object.entries(h.domainStates ?? {})),
    );
    for (const entry of this.domains.entries()) {
      const name = entry.definition.name;
      const active = entry.run !== undefined;
      const held = owners.get(name);
      if (!active || this.starting.has(name) || this.incoming.has(name)) continue;
      if (held === undefined) {
        const claim = await this.store.claim(name, this.host, this.lease);
        if (claim.ok) this.log(`claimed '${name}', which runs here`);
        else await this.#yieldTo(name, claim.holder?.owner.host ?? "another host");
      } else if (held.owner.host !== this.host) {
        await this.#yieldTo(name, held.owner.host);
      } else if (held.lease !== this.lease) {
        await this.store.rebind(held, { host: this.host, since: held.owner.since }, this.lease);
      }
    }
    for (const held of owners.values()) {
      if (
        held.owner.host !== this.host || this.starting.has(held.domain) ||
        this.moving.has(held.domain)
      ) continue;
      const entry = this.domains.entries().find((e) => e.definition.name === held.domain);
      if (entry?.run !== undefined) {
        this.#idleOwners.delete(held.domain);
        continue;
      }
      // Seen idle twice in a row: not a restart in progress (on_reboot) but a stop.
      if (!this.#idleOwners.has(held.domain)) {
        this.#idleOwners.add(held.domain);
        continue;
      }
      this.#idleOwners.delete(held.domain);
      await this.store.release(held);
    }
    if (this.#pools) await syncSharedPools(this.store, this.#pools, this.log);
    // Intents addressed to this host are also picked up here, not only from the watch: a
    // watch stream cut by a network partition can stay silent without ending.
    await this.intents.scan();
    await this.#publish();
  }

  /**
   * Starts the autostart domains nobody runs that placement gives to this host; the
   * claim makes sure that hosts joining at once never start one twice.
   */
  async #autostart(): Promise<void> {
    const view = await this.store.view();
    for (const entry of this.domains.entries()) {
      const name = entry.definition.name;
      if (!entry.persistent || !entry.definition.autostart || view.owners.has(name)) continue;
      try {
        if (place(entry.definition, view).host !== this.host) continue;
        await this.startHere(name);
        view.owners.set(name, this.host);
        this.log(`autostarted domain '${name}'`);
      } catch (error) {
        this.log(`autostart of '${name}': ${(error as Error).message}`);
      }
    }
  }

  /** Releases this host's owner key of `name` now (after a stop requested through the farm). */
  async release(name: string): Promise<void> {
    const held = await this.store.owner(name);
    if (held?.owner.host === this.host) await this.store.release(held);
  }

  /** The owner of `name`, or undefined. */
  owner(name: string): Promise<Owned | undefined> {
    return this.store.owner(name);
  }

  /** Destroys the copy running here: `holder` owns the domain in etcd. */
  async #yieldTo(name: string, holder: string): Promise<void> {
    this.log(`'${name}' runs here but host '${holder}' owns it; destroying the copy here`);
    await this.domains.locked(
      name,
      (entry) => entry.run ? this.domains.lifecycle.destroy(entry) : Promise.resolve(),
    ).catch((e) => this.log(`destroying '${name}': ${e.message}`));
    await this.store.event({
      host: this.host,
      kind: "yielded",
      domain: name,
      detail: `owned by '${holder}'; the copy here was destroyed`,
    }).catch(() => {});
  }

  /** Publishes this host's record now (its domains' states changed). */
  publish(): Promise<void> {
    return this.#publish();
  }

  async #publish(): Promise<void> {
    const now = new Date().toISOString();
    if (this.#record.joinedAt === "") this.#record.joinedAt = now;
    this.#record.updatedAt = now;
    if (this.#pools) this.#record.pools = activePools(this.#pools);
    this.#record.domainStates = Object.fromEntries(
      this.domains.entries().filter((e) => e.run !== undefined).map((e) => [
        e.definition.name,
        e.state,
      ]),
    );
    await this.store.putHost(this.#record, this.lease);
  }

  /**
   * Watches the farm's prefix, from `fromRevision` when given: a watch started again
   * after a break replays what happened meanwhile (an owner key that expired while this
   * host's stream was cut must still reach `ha.ownerGone`).
   */
  #startWatch(fromRevision?: number): void {
    const keys = this.store.keys;
    const watch = this.#etcd.watch(keys.root, (event) => this.#dispatch(event), fromRevision);
    this.#watch = watch;
    watch.ended.then(
      () => this.#restartWatch("the watch ended"),
      (error) => this.#restartWatch(error.message),
    );
  }

  #restartWatch(why: string): void {
    if (this.#stopped) return;
    this.log(`farm watch: ${why}; watching again in 1 s`);
    setTimeout(() => {
      if (this.#stopped) return;
      // What changed meanwhile is caught up by a full pass.
      mergeDefinitions(this).then(() => this.intents.scan()).catch(() => {});
      // From the last revision seen, unless etcd compacted it away (then from now).
      if (/compacted/.test(why)) this.#seenRevision = undefined;
      this.#startWatch(this.#seenRevision === undefined ? undefined : this.#seenRevision + 1);
    }, 1000);
  }

  #dispatch(event: WatchEvent): void {
    const keys = this.store.keys;
    const key = event.kv.key;
    this.#seenRevision = Math.max(this.#seenRevision ?? 0, event.kv.modRevision);
    if (key.startsWith(keys.definitions)) {
      const name = keys.name(key, keys.definitions);
      if (event.type === "put") {
        const definition = parseRecord<DomainDefinition>(event.kv.value);
        if (definition !== undefined) mirrorDefinition(this, definition);
      } else {
        this.domains.undefine(name).catch((e) =>
          this.log(`cannot drop '${name}', undefined in the farm: ${e.message}`)
        );
      }
    } else if (key.startsWith(keys.intents) && event.type === "put") {
      // A replayed put may be stale (the intent has moved on since): act on the current.
      const domain = keys.name(key, keys.intents);
      this.store.etcd.get(key).then((now) => {
        if (now !== undefined) this.intents.handle(domain, now.value);
      }).catch(() => {});
    } else if (key.startsWith(keys.owners) && event.type === "delete" && event.prev) {
      const owner = parseRecord<OwnerRecord>(event.prev.value);
      if (owner !== undefined) this.ha.ownerGone(keys.name(key, keys.owners), owner);
    }
  }

  async #rejoin(): Promise<void> {
    try {
      await this.#lease.grant();
      await writeLeaseFile(this.#options.leaseFile, this.lease, this.log);
      await this.#publish();
      await this.store.putMember(this.#record);
      await this.store.event({
        host: this.host,
        kind: "rejoined",
        detail: `after losing its lease; fenced: ${this.ha.fencedDomains.join(", ") || "none"}`,
      });
      await this.reconcile();
      this.log(`rejoined with lease ${this.lease}`);
    } catch (error) {
      this.log(`rejoining failed: ${(error as Error).message}; retrying in 2 s`);
      setTimeout(() => this.#rejoin(), 2000);
    }
  }
}
