/**
 * High availability and evacuation.
 *
 * Timeline of a lost host (defaults: lease TTL 6 s, renewal every 1 s):
 * - t0: the host's last successful lease renewal is sent;
 * - t0 + 4 s (TTL less a third, at least 1 s): the host, if alive but cut off from etcd,
 *   has not renewed and fences itself: it destroys its HA domains (farm_lease.ts);
 * - t0 + 6 s (and up to about 0.5 s later, etcd's expiry granularity): etcd expires the
 *   lease; the host key and its owner keys vanish in one revision;
 * - + 1 s (`haDelayMs`): the other daemons, which watch the owner keys, see the deletion
 *   with the host key gone (a lost host, not a clean release); the one that takes the
 *   domain's HA lock (a txn on `locks/ha/<domain>`) places it (placement.ts, excluding
 *   the lost host) and has it started through an intent.
 * A non-HA domain of a lost host is reported as lost (a farm event) and left for people.
 *
 * Evacuation moves a host's domains live (farm_live_move.ts) where both hosts take
 * migrations, and by a stop and a start elsewhere otherwise.
 *
 * A host whose daemon was killed cannot fence itself: its VMMs may still run. Shared
 * disks must then be protected by the images' locks; and when that daemon returns, its
 * reconcile finds the owner keys held by other hosts and destroys its own copies.
 *
 * @module
 */

import { ApiError } from "../../common/http/mod.ts";
import type { OwnerRecord } from "./farm_records.ts";
import type { FarmMember } from "./farm_member.ts";
import { type FarmView, place, PlacementError } from "./placement.ts";
import type { DomainDefinition } from "../api_types.ts";
import type { HostRecord } from "./farm_records.ts";
import { migrationAddress } from "./farm_live_move.ts";

/** What happened to one domain of an evacuation ("moving" while it happens). */
export interface EvacuationStep {
  domain: string;
  to?: string;
  status: "moving" | "moved" | "failed";
  /** Live migration, or a stop and a start (the guest restarts). */
  how?: "live" | "restart";
  /** Why it was not moved live, when it was not. */
  note?: string;
  error?: string;
  /** How long the move took. */
  seconds?: number;
  /** Its place in the evacuation (1-based) and the number of domains. */
  index?: number;
  total?: number;
}

/**
 * Where an evacuated domain goes: the hosts it can migrate to live first (when its host
 * has a migration listener), then any host; never its own.
 */
function placeForMove(definition: DomainDefinition, view: FarmView, source: HostRecord) {
  if (migrationAddress(source) !== undefined) {
    const noListener = view.hosts.filter((h) => migrationAddress(h) === undefined);
    try {
      return place(definition, view, { exclude: [source.name, ...noListener.map((h) => h.name)] });
    } catch (error) {
      if (!(error instanceof PlacementError)) throw error;
    }
  }
  return place(definition, view, { exclude: [source.name] });
}

/** HA restarts and evacuation for one farm member. */
export class FarmHa {
  readonly #member: FarmMember;
  readonly delayMs: number;
  /** The domains the last fencing destroyed (reported when the host rejoins). */
  fencedDomains: string[] = [];

  constructor(member: FarmMember, delayMs: number) {
    this.#member = member;
    this.delayMs = delayMs;
  }

  /** Destroys every HA domain running here (the lease may expire: others will restart them). */
  fence(): void {
    const { domains, log } = this.#member;
    this.fencedDomains = [];
    for (const entry of domains.entries()) {
      if (entry.run === undefined || entry.definition.ha !== true) continue;
      const name = entry.definition.name;
      log(`fencing: destroying HA domain '${name}'`);
      this.fencedDomains.push(name);
      domains.locked(name, (e) => e.run ? domains.lifecycle.destroy(e) : Promise.resolve())
        .catch((error) => log(`fencing '${name}' failed: ${error.message}`));
    }
  }

  /**
   * The lease survived a fence (etcd answered again in time): the fenced domains' owner
   * keys are still this host's, so no other host restarts them; this host does.
   */
  recover(): void {
    const { domains, log, store, host } = this.#member;
    const fenced = this.fencedDomains;
    this.fencedDomains = [];
    for (const name of fenced) {
      store.owner(name).then((held) => {
        if (held?.owner.host !== host) return;
        log(`restarting '${name}', fenced while its lease lived on`);
        return domains.locked(name, (e) => e.run ? Promise.resolve() : domains.lifecycle.start(e));
      }).catch((error) => log(`restarting fenced '${name}': ${error.message}`));
    }
  }

  /** An owner key was deleted: when its host was lost, restart the domain elsewhere. */
  async ownerGone(domain: string, owner: OwnerRecord): Promise<void> {
    const member = this.#member;
    if (owner.host === member.host) return;
    try {
      // Released by its host (the host key is still there): nothing was lost.
      if (await member.store.etcd.get(member.store.keys.host(owner.host))) return;
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (!(await member.store.lockHa(domain, member.host, member.lease))) return;
      try {
        await this.#restart(domain, owner.host);
      } finally {
        await member.store.unlockHa(domain).catch(() => {});
      }
    } catch (error) {
      member.log(`HA for '${domain}': ${(error as Error).message}`);
    }
  }

  async #restart(domain: string, lostHost: string): Promise<void> {
    const member = this.#member;
    const { store } = member;
    if (await store.owner(domain)) return; // Someone runs it already.
    const definition = await store.definition(domain);
    if (definition?.ha !== true) {
      await store.event({
        host: member.host,
        kind: "lost",
        domain,
        detail: `host '${lostHost}' was lost; not an HA domain: start it again by hand`,
      });
      return;
    }
    const placement = place(definition, await store.view(), { exclude: [lostHost] });
    await store.event({
      host: member.host,
      kind: "ha-restart",
      domain,
      detail:
        `host '${lostHost}' was lost; restarting on '${placement.host}' (${placement.reason})`,
    });
    if (placement.host === member.host) await member.startHere(domain);
    else await member.intents.request(domain, placement.host, `HA restart: '${lostHost}' lost`);
  }

  /**
   * Moves every domain off `host`: maintenance on (nothing new is placed there), then
   * each domain in turn is placed elsewhere and migrated live when both hosts have a
   * migration listener; a domain that cannot migrate (no listener on either side, or
   * its migration failed and it still runs on `host`) is stopped and started there
   * instead, and its step says so. `onStep` hears each step as it starts and ends.
   */
  async evacuate(
    host: string,
    onStep: (step: EvacuationStep) => void = () => {},
  ): Promise<EvacuationStep[]> {
    const { store, intents } = this.#member;
    const view = await store.view();
    const source = view.hosts.find((h) => h.name === host);
    if (source === undefined) {
      throw new ApiError(
        "not_found",
        `No live host '${host}' in the farm; 'denovisor host list' (or 'farm hosts') lists them`,
      );
    }
    await store.setMaintenance(host, true);
    view.maintenance.add(host);
    const steps: EvacuationStep[] = [];
    const owned = [...view.owners].filter(([, h]) => h === host).map(([d]) => d).sort();
    for (const [index, domain] of owned.entries()) {
      const started = performance.now();
      const position = { index: index + 1, total: owned.length };
      let step: EvacuationStep;
      try {
        const definition = view.definitions.get(domain);
        if (definition === undefined) throw new Error("it has no farm definition (transient)");
        const { host: to, reason } = placeForMove(definition, view, source);
        view.owners.set(domain, to);
        const target = view.hosts.find((h) => h.name === to)!;
        const missing = [source, target].find((h) => migrationAddress(h) === undefined);
        let how: "live" | "restart" = missing === undefined ? "live" : "restart";
        let note = missing === undefined
          ? undefined
          : `stopped and started: '${missing.name}' has no migration listener`;
        onStep({ domain, to, status: "moving", how, ...position });
        const why = `evacuation of '${host}': ${reason}`;
        if (how === "live") {
          try {
            await intents.request(domain, to, why, host, undefined, {});
          } catch (error) {
            if ((await store.owner(domain))?.owner.host !== host) throw error;
            how = "restart";
            note = `live migration failed (${(error as Error).message}); stopped and started`;
            onStep({ domain, to, status: "moving", how, note, ...position });
          }
        }
        if (how === "restart") await intents.request(domain, to, why, host);
        step = { domain, to, status: "moved", how, ...(note ? { note } : {}) };
      } catch (error) {
        view.owners.set(domain, host);
        step = { domain, status: "failed", error: (error as Error).message };
      }
      step = { ...step, seconds: Math.round(performance.now() - started) / 1000, ...position };
      steps.push(step);
      onStep(step);
    }
    await store.event({
      host: this.#member.host,
      kind: "evacuated",
      detail: `'${host}': ${
        steps.filter((s) => s.status === "moved").length
      } of ${steps.length} domains moved (${steps.filter((s) => s.how === "live").length} live)`,
    });
    return steps;
  }
}
