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
 * A host whose daemon was killed cannot fence itself: its VMMs may still run. Shared
 * disks must then be protected by the images' locks; and when that daemon returns, its
 * reconcile finds the owner keys held by other hosts and destroys its own copies.
 *
 * @module
 */

import { ApiError } from "../../common/http/mod.ts";
import type { OwnerRecord } from "./farm_records.ts";
import type { FarmMember } from "./farm_member.ts";
import { place } from "./placement.ts";

/** What happened to one domain of an evacuation. */
export interface EvacuationStep {
  domain: string;
  to?: string;
  status: "moved" | "failed";
  error?: string;
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
   * each domain in turn is placed elsewhere and moved by stop and start (live migration
   * is not used yet: the guests restart).
   */
  async evacuate(host: string): Promise<EvacuationStep[]> {
    const { store } = this.#member;
    const view = await store.view();
    if (!view.hosts.some((h) => h.name === host)) {
      throw new ApiError(
        "not_found",
        `No live host '${host}' in the farm; 'denovisor farm hosts' lists them`,
      );
    }
    await store.setMaintenance(host, true);
    view.maintenance.add(host);
    const steps: EvacuationStep[] = [];
    const owned = [...view.owners].filter(([, h]) => h === host).map(([d]) => d).sort();
    for (const domain of owned) {
      try {
        const definition = view.definitions.get(domain);
        if (definition === undefined) throw new Error("it has no farm definition (transient)");
        const { host: to, reason } = place(definition, view, { exclude: [host] });
        view.owners.set(domain, to);
        await this.#member.intents.request(domain, to, `evacuation of '${host}': ${reason}`, host);
        steps.push({ domain, to, status: "moved" });
      } catch (error) {
        view.owners.set(domain, host);
        steps.push({ domain, status: "failed", error: (error as Error).message });
      }
    }
    await store.event({
      host: this.#member.host,
      kind: "evacuated",
      detail: `'${host}': ${
        steps.filter((s) => s.status === "moved").length
      } of ${steps.length} domains moved`,
    });
    return steps;
  }
}
