/**
 * GET /metrics: gathers a snapshot (every domain, the counters of each running VMM, the
 * VMM processes' CPU time from /proc, the pools) and formats it with metrics.ts.
 *
 * A scrape never waits on a domain's lock (a shutdown may hold it for a minute) and
 * gives each VMM a short bound: a hung VMM costs its own series and one count in
 * `denovisor_scrape_errors`, not the scrape.
 *
 * @module
 */

import type { Router } from "../../common/http/mod.ts";
import { VERSION } from "../../common/version.ts";
import { parseStatCpuTicks, USER_HZ } from "../../vmm/proc_stats.ts";
import type { DomainStats, PoolInfo } from "../api_types.ts";
import { definitionMemoryBytes } from "../domain/definition.ts";
import type { DomainEntry } from "./domain_entry.ts";
import {
  type DomainMetrics,
  formatMetrics,
  METRICS_CONTENT_TYPE,
  type MetricsSnapshot,
} from "./metrics.ts";

/** How long one VMM may take to report its counters during a scrape. */
const STATS_TIMEOUT_MS = 2000;

/** What the route reads. */
export interface MetricsSources {
  /** The daemon's domains (DomainManager). */
  domains: { entries(): DomainEntry[] };
  /** The pools (omitted: no pool series). */
  pools?: () => PoolInfo[];
}

/** Adds GET /metrics to `router`. */
export function addMetricsRoute(router: Router, sources: MetricsSources): void {
  router.add("GET", "/metrics", async () => {
    const text = formatMetrics(await gatherMetrics(sources));
    return new Response(text, { headers: { "content-type": METRICS_CONTENT_TYPE } });
  });
}

/** The snapshot /metrics shows now. */
export async function gatherMetrics(sources: MetricsSources): Promise<MetricsSnapshot> {
  let scrapeErrors = 0;
  const domains = await Promise.all(
    sources.domains.entries().map(async (entry): Promise<DomainMetrics> => {
      const metrics: DomainMetrics = {
        name: entry.definition.name,
        state: entry.state,
        persistent: entry.persistent,
        vcpus: entry.definition.vcpus ?? 1,
        memoryBytes: definitionMemoryBytes(entry.definition),
      };
      const run = entry.run;
      if (run === undefined) return metrics;
      if (entry.state === "running" || entry.state === "paused") {
        const stats = await vmmStats(entry);
        if (stats === undefined) scrapeErrors++;
        else metrics.stats = stats;
      }
      metrics.vmmCpuSeconds = processCpuSeconds(run.pid, run.record.pidStartTime);
      return metrics;
    }),
  );
  let pools: PoolInfo[] = [];
  try {
    pools = sources.pools?.() ?? [];
  } catch {
    // A pool directory being edited by hand: the domains' figures still count.
  }
  return { version: VERSION, hostname: Deno.hostname(), domains, pools, scrapeErrors };
}

async function vmmStats(entry: DomainEntry): Promise<DomainStats | undefined> {
  try {
    return await entry.run!.control.call<DomainStats>(
      "GET",
      "/vm/stats",
      undefined,
      STATS_TIMEOUT_MS,
    );
  } catch {
    return undefined;
  }
}

/**
 * utime + stime of process `pid` (all its threads) in seconds; undefined when it is gone
 * or is no longer the process that started at `startTime` (a reused pid).
 */
export function processCpuSeconds(pid: number, startTime: number): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3; starttime is field 22.
  if (startTime >= 0 && Number(fields[22 - 3]) !== startTime) return undefined;
  try {
    return parseStatCpuTicks(stat) / USER_HZ;
  } catch {
    return undefined;
  }
}
