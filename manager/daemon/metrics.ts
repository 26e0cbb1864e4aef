/**
 * The daemon's figures in the Prometheus text exposition format (version 0.0.4), served
 * at GET /metrics. This file only formats: `formatMetrics` is a pure function of a
 * snapshot that metrics_route.ts gathers, so the format is tested without a daemon.
 *
 * Names follow Prometheus' conventions: a `denovisor_` prefix, base units (seconds,
 * bytes), `_total` on counters, one label per dimension (`domain`, `vcpu`, `disk`,
 * `nic`, `pool`, `state`). A domain's state is one series per possible state with value
 * 1 for the current one (as node_exporter's systemd unit state), so `== 1` selects it
 * and a state change never leaves a stale series behind.
 *
 * @module
 */

import { DOMAIN_STATES, type DomainState } from "../../common/enums.ts";
import type { DomainStats, PoolInfo } from "../api_types.ts";

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One domain as the metrics see it. */
export interface DomainMetrics {
  name: string;
  state: DomainState;
  persistent: boolean;
  /** vCPUs and memory of its definition. */
  vcpus: number;
  memoryBytes: number;
  /** The VMM's counters, when it runs and answered. */
  stats?: DomainStats;
  /** CPU time of the whole VMM process (vCPU threads included), when it runs. */
  vmmCpuSeconds?: number;
}

/** Everything /metrics shows. */
export interface MetricsSnapshot {
  version: string;
  hostname: string;
  domains: DomainMetrics[];
  pools: PoolInfo[];
  /** Domains whose VMM did not answer GET /vm/stats this time. */
  scrapeErrors: number;
}

type MetricType = "gauge" | "counter";
type Labels = Record<string, string>;

/** One metric family: its HELP, TYPE and samples, written together as the format wants. */
class Family {
  readonly samples: [Labels, number][] = [];
  constructor(readonly name: string, readonly type: MetricType, readonly help: string) {}

  add(labels: Labels, value: number): void {
    this.samples.push([labels, value]);
  }
}

/** The snapshot as exposition text (every family with its HELP and TYPE, ending in \n). */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  const families: Family[] = [];
  const family = (name: string, type: MetricType, help: string) => {
    const made = new Family(`denovisor_${name}`, type, help);
    families.push(made);
    return made;
  };

  family("info", "gauge", "Version and host name of this daemon (value 1)")
    .add({ version: snapshot.version, hostname: snapshot.hostname }, 1);
  const byState = family("domains", "gauge", "Domains defined on this host by state");
  for (const state of DOMAIN_STATES) {
    byState.add({ state }, snapshot.domains.filter((domain) => domain.state === state).length);
  }
  family("scrape_errors", "gauge", "Running domains whose VMM did not report its counters")
    .add({}, snapshot.scrapeErrors);

  addDomainFamilies(snapshot.domains, family);
  addPoolFamilies(snapshot.pools, family);
  return families.filter((each) => each.samples.length > 0).map(formatFamily).join("");
}

type FamilyMaker = (name: string, type: MetricType, help: string) => Family;

function addDomainFamilies(domains: DomainMetrics[], family: FamilyMaker): void {
  const state = family("domain_state", "gauge", "1 for the domain's current state, else 0");
  const persistent = family("domain_persistent", "gauge", "1 if defined, 0 if transient");
  const vcpus = family("domain_vcpus", "gauge", "vCPUs of the domain's definition");
  const memory = family("domain_memory_bytes", "gauge", "Guest RAM of the domain's definition");
  const vcpuTime = family(
    "domain_vcpu_seconds_total",
    "counter",
    "CPU time of each vCPU's own thread (user and system) since the VMM started; absent " +
      "for a vCPU run off-thread (each after the first), whose CPU time is not known",
  );
  const vmmTime = family(
    "domain_vmm_cpu_seconds_total",
    "counter",
    "CPU time of the whole VMM process; minus the vCPUs' time it is the VMM's overhead",
  );
  const guest = family("domain_guest_memory_bytes", "gauge", "Guest RAM of the running VMM");
  const available = family(
    "domain_available_memory_bytes",
    "gauge",
    "Guest RAM minus what the balloon holds",
  );
  const balloon = family("domain_balloon_bytes", "gauge", "Guest RAM held by the balloon");
  const rss = family("domain_vmm_rss_bytes", "gauge", "Resident set of the VMM process");
  const disk = {
    readRequests: family("domain_disk_read_requests_total", "counter", "Disk read requests"),
    writeRequests: family("domain_disk_write_requests_total", "counter", "Disk write requests"),
    readBytes: family("domain_disk_read_bytes_total", "counter", "Bytes read from the disk"),
    writeBytes: family("domain_disk_write_bytes_total", "counter", "Bytes written to the disk"),
    flushes: family("domain_disk_flushes_total", "counter", "Disk flush requests"),
    errors: family("domain_disk_errors_total", "counter", "Disk requests that failed"),
    throttled: family(
      "domain_disk_throttled_total",
      "counter",
      "Disk requests held back by the rate limiter",
    ),
  } as const;
  const nic = {
    rxFrames: family("domain_nic_receive_frames_total", "counter", "Frames given to the guest"),
    txFrames: family("domain_nic_transmit_frames_total", "counter", "Frames sent by the guest"),
    rxBytes: family("domain_nic_receive_bytes_total", "counter", "Bytes given to the guest"),
    txBytes: family("domain_nic_transmit_bytes_total", "counter", "Bytes sent by the guest"),
    rxDropped: family(
      "domain_nic_receive_dropped_total",
      "counter",
      "Frames for the guest dropped (no receive buffer)",
    ),
  } as const;

  for (const domain of domains) {
    const name = { domain: domain.name };
    for (const each of DOMAIN_STATES) state.add({ ...name, state: each }, +(each === domain.state));
    persistent.add(name, +domain.persistent);
    vcpus.add(name, domain.vcpus);
    memory.add(name, domain.memoryBytes);
    if (domain.vmmCpuSeconds !== undefined) vmmTime.add(name, domain.vmmCpuSeconds);
    const stats = domain.stats;
    if (!stats) continue;
    for (const vcpu of stats.vcpus) {
      if (vcpu.cpuTimeNs === undefined) continue; // not known: no series rather than a guess
      vcpuTime.add({ ...name, vcpu: String(vcpu.index) }, vcpu.cpuTimeNs / 1e9);
    }
    guest.add(name, stats.memory.guestBytes);
    available.add(name, stats.memory.availableBytes);
    balloon.add(name, stats.memory.balloonBytes);
    rss.add(name, stats.memory.rssBytes);
    for (const each of stats.disks) {
      for (const key of Object.keys(disk) as (keyof typeof disk)[]) {
        disk[key].add({ ...name, disk: each.name }, each[key]);
      }
    }
    for (const each of stats.nics) {
      for (const key of Object.keys(nic) as (keyof typeof nic)[]) {
        nic[key].add({ ...name, nic: each.name, tap: each.tap }, each[key]);
      }
    }
  }
}

function addPoolFamilies(pools: PoolInfo[], family: FamilyMaker): void {
  const active = family("pool_active", "gauge", "1 if the storage pool is active");
  const capacity = family("pool_capacity_bytes", "gauge", "Size of the pool's filesystem");
  const allocation = family("pool_allocation_bytes", "gauge", "Bytes used in the pool");
  const available = family("pool_available_bytes", "gauge", "Bytes left in the pool");
  const volumes = family("pool_volumes", "gauge", "Volumes in the pool");
  for (const pool of pools) {
    const name = { pool: pool.name };
    active.add(name, +(pool.state === "active"));
    if (pool.state !== "active") continue;
    if (pool.capacityBytes !== undefined) capacity.add(name, pool.capacityBytes);
    if (pool.allocationBytes !== undefined) allocation.add(name, pool.allocationBytes);
    if (pool.availableBytes !== undefined) available.add(name, pool.availableBytes);
    volumes.add(name, pool.volumes);
  }
}

function formatFamily(family: Family): string {
  const lines = [
    `# HELP ${family.name} ${escapeHelp(family.help)}`,
    `# TYPE ${family.name} ${family.type}`,
  ];
  for (const [labels, value] of family.samples) {
    const pairs = Object.entries(labels).map(([key, text]) => `${key}="${escapeLabel(text)}"`);
    const labelText = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
    lines.push(`${family.name}${labelText} ${formatValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

/** A label value: backslash, double quote and newline escaped, as the format requires. */
export function escapeLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text: backslash and newline escaped. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Go's ParseFloat reads it (NaN and the infinities by name). */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
