/**
 * Typed reads and writes of one farm's keys (farm_records.ts) over the etcd interface.
 * Ownership changes only by transaction: a claim succeeds only when no owner key exists
 * (create revision 0), a release or a rebind only when the key is still the one this
 * host saw (mod revision), so two hosts can never both believe they own a domain.
 *
 * @module
 */

import type { DomainDefinition, PoolDefinition } from "../api_types.ts";
import type { EtcdKv, KeyValue } from "./etcd_types.ts";
import {
  type EventRecord,
  FarmKeys,
  type HostRecord,
  type IntentRecord,
  type OwnerRecord,
  parseRecord,
} from "./farm_records.ts";
import type { FarmView } from "./placement.ts";

/** How long farm events are kept. */
const EVENT_RETENTION_MS = 24 * 3600_000;

/** An owner key as read, with the revision a later release must compare against. */
export interface Owned {
  domain: string;
  owner: OwnerRecord;
  modRevision: number;
  lease: string;
}

/** The outcome of a claim: ours, or whose it is. */
export type ClaimResult = { ok: true; modRevision: number } | { ok: false; holder?: Owned };

/** One farm's state in etcd. */
export class FarmStore {
  readonly etcd: EtcdKv;
  readonly keys: FarmKeys;
  readonly farm: string;
  #eventSeq = 0;

  constructor(etcd: EtcdKv, farm: string) {
    this.etcd = etcd;
    this.farm = farm;
    this.keys = new FarmKeys(farm);
  }

  async hosts(): Promise<HostRecord[]> {
    const { kvs } = await this.etcd.list(this.keys.hosts);
    return kvs.map((kv) => parseRecord<HostRecord>(kv.value)).filter((h) => h !== undefined);
  }

  putHost(record: HostRecord, lease: string): Promise<number> {
    return this.etcd.put(this.keys.host(record.name), JSON.stringify(record), lease);
  }

  /** The live host key of `name` (its record and the lease it is bound to), if any. */
  async liveHost(name: string): Promise<{ record: HostRecord; lease: string } | undefined> {
    const kv = await this.etcd.get(this.keys.host(name));
    const record = kv && parseRecord<HostRecord>(kv.value);
    return kv && record ? { record, lease: kv.lease } : undefined;
  }

  /** Remembers `record` as a member of the farm (no lease: it outlives the host's). */
  putMember(record: HostRecord): Promise<number> {
    return this.etcd.put(this.keys.member(record.name), JSON.stringify(record));
  }

  /** Every host that ever joined and was not removed, as of its last join. */
  async members(): Promise<HostRecord[]> {
    const { kvs } = await this.etcd.list(this.keys.members);
    return kvs.map((kv) => parseRecord<HostRecord>(kv.value)).filter((h) => h !== undefined);
  }

  /** Forgets a host: its member record and its maintenance mark. */
  async removeMember(name: string): Promise<void> {
    await this.etcd.delete(this.keys.member(name));
    await this.etcd.delete(`${this.keys.maintenance}${name}`);
  }

  async maintenance(): Promise<Set<string>> {
    const { kvs } = await this.etcd.list(this.keys.maintenance);
    return new Set(kvs.map((kv) => this.keys.name(kv.key, this.keys.maintenance)));
  }

  async setMaintenance(host: string, on: boolean): Promise<void> {
    const key = `${this.keys.maintenance}${host}`;
    if (on) await this.etcd.put(key, new Date().toISOString());
    else await this.etcd.delete(key);
  }

  /** Stores a shared pool's definition unless the farm has one of that name. */
  async createPool(definition: PoolDefinition): Promise<boolean> {
    const key = `${this.keys.pools}${definition.name}`;
    const result = await this.etcd.txn(
      [{ key, target: "create", result: "equal", createRevision: 0 }],
      [{ put: { key, value: JSON.stringify(definition) } }],
    );
    return result.succeeded;
  }

  async definitions(): Promise<Map<string, DomainDefinition>> {
    const { kvs } = await this.etcd.list(this.keys.definitions);
    const map = new Map<string, DomainDefinition>();
    for (const kv of kvs) {
      const definition = parseRecord<DomainDefinition>(kv.value);
      if (definition !== undefined) {
        map.set(this.keys.name(kv.key, this.keys.definitions), definition);
      }
    }
    return map;
  }

  async definition(domain: string): Promise<DomainDefinition | undefined> {
    const kv = await this.etcd.get(this.keys.definition(domain));
    return kv === undefined ? undefined : parseRecord<DomainDefinition>(kv.value);
  }

  /** Stores a new definition; false when the farm already has one of that name. */
  async createDefinition(definition: DomainDefinition): Promise<boolean> {
    const key = this.keys.definition(definition.name);
    const result = await this.etcd.txn(
      [{ key, target: "create", result: "equal", createRevision: 0 }],
      [{ put: { key, value: JSON.stringify(definition) } }],
    );
    return result.succeeded;
  }

  putDefinition(definition: DomainDefinition): Promise<number> {
    return this.etcd.put(this.keys.definition(definition.name), JSON.stringify(definition));
  }

  deleteDefinition(domain: string): Promise<number> {
    return this.etcd.delete(this.keys.definition(domain));
  }

  async owners(): Promise<Owned[]> {
    const { kvs } = await this.etcd.list(this.keys.owners);
    return kvs.map((kv) => this.#owned(kv)).filter((o) => o !== undefined);
  }

  async owner(domain: string): Promise<Owned | undefined> {
    const kv = await this.etcd.get(this.keys.owner(domain));
    return kv === undefined ? undefined : this.#owned(kv);
  }

  /** Makes `host` the owner of `domain`, bound to `lease`, if nobody owns it. */
  async claim(domain: string, host: string, lease: string): Promise<ClaimResult> {
    const key = this.keys.owner(domain);
    const record: OwnerRecord = { host, since: new Date().toISOString() };
    const result = await this.etcd.txn(
      [{ key, target: "create", result: "equal", createRevision: 0 }],
      [{ put: { key, value: JSON.stringify(record), lease } }],
      [{ range: { key } }],
    );
    if (result.succeeded) return { ok: true, modRevision: result.revision };
    const kv = result.ranges[0]?.[0];
    return { ok: false, holder: kv === undefined ? undefined : this.#owned(kv) };
  }

  /** Re-binds an owner key this host holds to a new lease (after a rejoin or a clean stop). */
  async rebind(held: Owned, record: OwnerRecord, lease?: string): Promise<boolean> {
    const key = this.keys.owner(held.domain);
    const result = await this.etcd.txn(
      [{ key, target: "mod", result: "equal", modRevision: held.modRevision }],
      [{ put: { key, value: JSON.stringify(record), lease } }],
    );
    return result.succeeded;
  }

  /** Deletes the owner key if it is still the one `held` saw. */
  async release(held: Owned): Promise<boolean> {
    const key = this.keys.owner(held.domain);
    const result = await this.etcd.txn(
      [{ key, target: "mod", result: "equal", modRevision: held.modRevision }],
      [{ deleteRange: { key } }],
    );
    return result.succeeded;
  }

  /**
   * Hands the owner key of a domain that has just migrated from `from` to `to`, bound to
   * `lease` (the new host's): only while `from` still holds it, or nobody does.
   */
  async handOver(domain: string, from: string, to: string, lease: string): Promise<boolean> {
    const key = this.keys.owner(domain);
    const record = JSON.stringify({ host: to, since: new Date().toISOString() });
    const held = await this.owner(domain);
    if (held !== undefined && held.owner.host === to) return true;
    const result = await this.etcd.txn(
      [
        held === undefined || held.owner.host !== from
          ? { key, target: "create", result: "equal", createRevision: 0 }
          : { key, target: "mod", result: "equal", modRevision: held.modRevision },
      ],
      [{ put: { key, value: record, lease } }],
    );
    return result.succeeded;
  }

  /** Takes the HA-restart lock of `domain` for `host` (bound to its lease); false if taken. */
  async lockHa(domain: string, host: string, lease: string): Promise<boolean> {
    const key = this.keys.haLock(domain);
    const result = await this.etcd.txn(
      [{ key, target: "create", result: "equal", createRevision: 0 }],
      [{ put: { key, value: host, lease } }],
    );
    return result.succeeded;
  }

  unlockHa(domain: string): Promise<number> {
    return this.etcd.delete(this.keys.haLock(domain));
  }

  async intents(): Promise<{ domain: string; intent: IntentRecord; modRevision: number }[]> {
    const { kvs } = await this.etcd.list(this.keys.intents);
    return kvs.flatMap((kv) => {
      const intent = parseRecord<IntentRecord>(kv.value);
      return intent === undefined ? [] : [{
        domain: this.keys.name(kv.key, this.keys.intents),
        intent,
        modRevision: kv.modRevision,
      }];
    });
  }

  /** Writes an intent unless another is pending for the domain; false then. */
  async putIntent(domain: string, intent: IntentRecord): Promise<boolean> {
    const key = this.keys.intent(domain);
    const existing = await this.etcd.get(key);
    const pending = existing && parseRecord<IntentRecord>(existing.value)?.status === "pending";
    if (pending) return false;
    const result = await this.etcd.txn(
      [
        existing
          ? { key, target: "mod", result: "equal", modRevision: existing.modRevision }
          : { key, target: "create", result: "equal", createRevision: 0 },
      ],
      [{ put: { key, value: JSON.stringify(intent) } }],
    );
    return result.succeeded;
  }

  /** Records the outcome of intent `id` (if it is still the current one). */
  async finishIntent(
    domain: string,
    id: string,
    error?: string,
    result?: unknown,
  ): Promise<void> {
    await this.updateIntent(domain, id, (intent) => ({
      ...intent,
      status: error ? "failed" : "done",
      error,
      ...(result === undefined ? {} : { result }),
    }));
  }

  /** Rewrites intent `id` with `change` (if it is still the current one); false if not. */
  async updateIntent(
    domain: string,
    id: string,
    change: (intent: IntentRecord) => IntentRecord,
  ): Promise<boolean> {
    const key = this.keys.intent(domain);
    for (let attempt = 0; attempt < 5; attempt++) {
      const kv = await this.etcd.get(key);
      const intent = kv && parseRecord<IntentRecord>(kv.value);
      if (!kv || intent?.id !== id) return false;
      const result = await this.etcd.txn(
        [{ key, target: "mod", result: "equal", modRevision: kv.modRevision }],
        [{ put: { key, value: JSON.stringify(change(intent)) } }],
      );
      if (result.succeeded) return true;
    }
    return false;
  }

  async intent(domain: string): Promise<IntentRecord | undefined> {
    const kv = await this.etcd.get(this.keys.intent(domain));
    return kv === undefined ? undefined : parseRecord<IntentRecord>(kv.value);
  }

  /** Appends a farm event. */
  async event(record: Omit<EventRecord, "time">): Promise<void> {
    const time = new Date().toISOString();
    const key = `${this.keys.events}${time}-${record.host}-${++this.#eventSeq}`;
    await this.etcd.put(key, JSON.stringify({ time, ...record }));
  }

  /** The farm events, oldest first (the last `limit`). */
  async events(limit = 100): Promise<EventRecord[]> {
    const { kvs } = await this.etcd.list(this.keys.events);
    return kvs.slice(-limit).map((kv) => parseRecord<EventRecord>(kv.value))
      .filter((e) => e !== undefined);
  }

  /** Deletes events older than the retention (a day). */
  async pruneEvents(): Promise<void> {
    const cutoff = new Date(Date.now() - EVENT_RETENTION_MS).toISOString();
    const { kvs } = await this.etcd.list(this.keys.events);
    for (const kv of kvs) {
      if (this.keys.name(kv.key, this.keys.events) < cutoff) await this.etcd.delete(kv.key);
    }
  }

  /** What placement needs, read at once. */
  async view(): Promise<FarmView> {
    const [hosts, owners, definitions, maintenance] = await Promise.all([
      this.hosts(),
      this.owners(),
      this.definitions(),
      this.maintenance(),
    ]);
    return {
      hosts,
      owners: new Map(owners.map((o) => [o.domain, o.owner.host])),
      definitions,
      maintenance,
    };
  }

  #owned(kv: KeyValue): Owned | undefined {
    const owner = parseRecord<OwnerRecord>(kv.value);
    if (owner === undefined || typeof owner.host !== "string") return undefined;
    return {
      domain: this.keys.name(kv.key, this.keys.owners),
      owner,
      modRevision: kv.modRevision,
      lease: kv.lease,
    };
  }
}
