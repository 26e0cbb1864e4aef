/**
 * Placement: which host should run a domain. A pure function of the farm's view (hosts,
 * what each runs, maintenance) so that it is tested and benchmarked without etcd.
 *
 * The policy, in order:
 * 1. constraints: the host is up (has a lease), not in maintenance, not excluded (the
 *    lost or evacuated host), has the pools of the domain's disks active, is
 *    `placement.host` when given, has every label of
 *    `placement.labels`, and runs no other domain of the `placement.antiAffinity` group;
 * 2. capacity: its free memory and free vCPUs (capacity minus the definitions of the
 *    domains it owns) hold the domain; no host is ever overcommitted;
 * 3. preference: the host `prefer` names when it qualifies (`start` without a host: the
 *    host asked keeps the domain if it can), else the most free memory after placing
 *    (memory is what cannot be shared), then the fewest domains, then the name (a
 *    stable answer).
 *
 * @module
 */

import type { DomainDefinition } from "../api_types.ts";
import { definitionMemoryBytes } from "../domain/definition.ts";
import type { HostRecord } from "./farm_records.ts";
import { DenovisorError } from "../../common/errors.ts";

/** What placement sees of the farm. */
export interface FarmView {
  hosts: HostRecord[];
  /** domain -> owning host. */
  owners: Map<string, string>;
  /** Every definition, by name (for the load of each host). */
  definitions: Map<string, DomainDefinition>;
  /** Hosts in maintenance. */
  maintenance: Set<string>;
}

/** A placement decision and why. */
export interface Placement {
  host: string;
  reason: string;
}

/** No host can take the domain. */
export class PlacementError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** Free memory, free vCPUs and domain count of every host. */
export function hostLoads(
  view: FarmView,
): Map<string, { freeMemoryBytes: number; freeVcpus: number; domains: string[] }> {
  const loads = new Map(
    view.hosts.map((h) => [h.name, {
      freeMemoryBytes: h.capacity.memoryBytes,
      freeVcpus: h.capacity.vcpus,
      domains: [] as string[],
    }]),
  );
  for (const [domain, host] of view.owners) {
    const load = loads.get(host);
    const definition = view.definitions.get(domain);
    if (load === undefined || definition === undefined) continue;
    load.freeMemoryBytes -= definitionMemoryBytes(definition);
    load.freeVcpus -= definition.vcpus ?? 1;
    load.domains.push(domain);
  }
  return loads;
}

/** Picks the host for `definition`; throws a `PlacementError` saying why none fits. */
export function place(
  definition: DomainDefinition,
  view: FarmView,
  options: { exclude?: string[]; prefer?: string } = {},
): Placement {
  const memory = definitionMemoryBytes(definition);
  const vcpus = definition.vcpus ?? 1;
  const loads = hostLoads(view);
  const refused: string[] = [];
  const fits: { host: HostRecord; free: number; count: number }[] = [];
  for (const host of view.hosts) {
    const load = loads.get(host.name)!;
    const why = refusal(host, load, view, definition, memory, vcpus, options.exclude ?? []);
    if (why !== undefined) {
      refused.push(`${host.name}: ${why}`);
      continue;
    }
    fits.push({ host, free: load.freeMemoryBytes - memory, count: load.domains.length });
  }
  if (fits.length === 0) {
    throw new PlacementError(
      `No host can run '${definition.name}' (${memory / 2 ** 20} MiB, ${vcpus} vCPUs)` +
        (refused.length === 0 ? ": the farm has no live host" : `: ${refused.join("; ")}`),
    );
  }
  const preferred = fits.find((f) => f.host.name === options.prefer);
  if (preferred !== undefined) {
    return {
      host: preferred.host.name,
      reason: `the host asked, which fits (${Math.floor(preferred.free / 2 ** 20)} MiB left)`,
    };
  }
  fits.sort((a, b) =>
    b.free - a.free || a.count - b.count || a.host.name.localeCompare(b.host.name)
  );
  const best = fits[0];
  return {
    host: best.host.name,
    reason: `most free memory after placing (${Math.floor(best.free / 2 ** 20)} MiB left, ` +
      `${best.count} other domains) among ${fits.length} fitting hosts`,
  };
}

function refusal(
  host: HostRecord,
  load: { freeMemoryBytes: number; freeVcpus: number; domains: string[] },
  view: FarmView,
  definition: DomainDefinition,
  memory: number,
  vcpus: number,
  exclude: string[],
): string | undefined {
  const rule = definition.placement ?? {};
  if (exclude.includes(host.name)) return "excluded";
  if (view.maintenance.has(host.name)) return "in maintenance";
  if (rule.host !== undefined && rule.host !== host.name) return `placement.host is ${rule.host}`;
  for (const [key, value] of Object.entries(rule.labels ?? {})) {
    if (host.labels[key] !== value) return `no label ${key}=${value}`;
  }
  const missing = (definition.disks ?? []).find((d) =>
    d.pool !== undefined && host.pools !== undefined && !host.pools.includes(d.pool)
  );
  if (missing !== undefined) return `pool ${missing.pool} is not active there`;
  if (rule.antiAffinity !== undefined) {
    const clash = load.domains.find((d) =>
      view.definitions.get(d)?.placement?.antiAffinity === rule.antiAffinity
    );
    if (clash !== undefined) return `runs '${clash}' of anti-affinity group ${rule.antiAffinity}`;
  }
  if (load.freeMemoryBytes < memory) {
    return `${Math.floor(load.freeMemoryBytes / 2 ** 20)} MiB free`;
  }
  if (load.freeVcpus < vcpus) return `${load.freeVcpus} vCPUs free`;
  return undefined;
}
