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
  async finishIntent(domain: string, id: string, error?: string): Promise<void> {
    const key = this.keys.intent(domain);
    const kv = await this.etcd.get(key);
    const intent = kv && parseRecord<IntentRecord>(kv.value);
    if (!kv || intent?.id !== id) return;
    const done: IntentRecord = { ...intent, status: error ? "failed" : "done", error };
    await this.etcd.txn(
      [{ key, target: "mod", result: "equal", modRevision: kv.modRevision }],
      [{ put: { key, value: JSON.stringify(done) } }],
    );
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
