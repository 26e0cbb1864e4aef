/**
 * `denovisor farm`: the farm a daemon belongs to (manager/farm/), through any of its
 * hosts' daemons: status, hosts, events, maintenance, evacuate.
 *
 * @module
 */

import type {
  EvacuationStep,
  EventRecord,
  FarmHost,
  FarmStatus,
} from "../manager/farm/farm_api.ts";
import { formatFields, formatTable } from "./output.ts";
import { emit, runGroupCli, type Subcommand } from "./pool_output.ts";
import { UsageError } from "./usage_error.ts";

const INTRO = `A farm is many hosts managed as one: each daemon started with --farm NAME --etcd URL
keeps the farm's state in etcd (hosts, definitions, which host runs each domain). Domains
defined on any host are known to all; 'denovisor start NAME --host auto' places a domain
on the host with the most free memory; a domain with "ha": true restarts on another host
when its host is lost. See docs/farm.md.

Example:
  denovisor farm status
  denovisor farm maintenance host2 on && denovisor farm evacuate host2`;

const MIB = 2 ** 20;

function hostTable(hosts: FarmHost[]): string {
  return formatTable(
    ["Host", "Address", "State", "Free memory", "Free vCPUs", "Domains", "Labels"],
    hosts.map((h) => [
      h.name,
      h.address,
      h.maintenance ? "maintenance" : "up",
      `${Math.floor(h.freeMemoryBytes / MIB)}/${Math.floor(h.capacity.memoryBytes / MIB)} MiB`,
      `${h.freeVcpus}/${h.capacity.vcpus}`,
      h.domains.length,
      Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
    ]),
    { align: ["left", "left", "left", "right", "right", "right"] },
  );
}

/** The `farm` subcommands. */
export const FARM_SUBCOMMANDS: Subcommand[] = [
  {
    name: "status",
    usage: "",
    summary: "The farm: etcd, timings, hosts and their load, running domains",
    min: 0,
    max: 0,
    run: async (ctx) => {
      const status = await ctx.client.get<FarmStatus>("/v1/farm");
      return emit(ctx, status, () =>
        [
          formatFields([
            ["Farm", status.farm],
            [
              "Answered by",
              status.host + (status.fenced ? " (FENCED: cannot renew its lease)" : ""),
            ],
            ["etcd", `${status.etcd.version}, revision ${status.etcd.revision}`],
            [
              "Timings",
              `lease TTL ${status.leaseTtlSeconds} s, fence after ${status.fenceAfterSeconds} s, ` +
              `HA restart ${status.haDelaySeconds} s after expiry`,
            ],
          ]),
          "",
          hostTable(status.hosts),
          "",
          status.owners.length === 0 ? " No domain runs." : formatTable(
            ["Domain", "Host", "Since"],
            status.owners.map((
              o,
            ) => [o.domain, o.host + (o.detached ? " (daemon stopped)" : ""), o.since]),
          ),
        ].join("\n"));
    },
  },
  {
    name: "hosts",
    usage: "",
    summary: "The live hosts, their free memory and vCPUs",
    min: 0,
    max: 0,
    run: async (ctx) => {
      const hosts = await ctx.client.get<FarmHost[]>("/v1/farm/hosts");
      return emit(ctx, hosts, () => hostTable(hosts));
    },
  },
  {
    name: "events",
    usage: "[--limit N]",
    summary: "The farm's recent events (joins, placements, HA restarts, fencing)",
    options: { limit: { type: "string" } },
    min: 0,
    max: 0,
    run: async (ctx) => {
      const limit = ctx.values.limit === undefined ? "" : `?limit=${ctx.values.limit}`;
      const events = await ctx.client.get<EventRecord[]>(`/v1/farm/events${limit}`);
      return emit(ctx, events, () =>
        formatTable(
          ["Time", "Host", "Event", "Domain", "Detail"],
          events.map((e) => [e.time, e.host, e.kind, e.domain ?? "-", e.detail ?? ""]),
        ));
    },
  },
  {
    name: "maintenance",
    usage: "HOST on|off",
    summary: "Keep new domains off HOST (on) or allow them again (off)",
    min: 2,
    max: 2,
    run: async (ctx) => {
      const [host, mode] = ctx.positionals;
      if (mode !== "on" && mode !== "off") {
        throw new UsageError(`farm maintenance: expected on or off, got '${mode}'`);
      }
      const info = await ctx.client.put<FarmHost>(
        `/v1/farm/hosts/${encodeURIComponent(host)}/maintenance`,
        { enabled: mode === "on" },
      );
      return emit(ctx, info, () => `Host ${host}: maintenance ${mode}`);
    },
  },
  {
    name: "evacuate",
    usage: "HOST",
    summary: "Move every domain off HOST (maintenance on; each stopped and started elsewhere)",
    details: "Live migration is not used yet: the guests restart on their new hosts.",
    min: 1,
    max: 1,
    run: async (ctx) => {
      const host = ctx.positionals[0];
      const steps = await ctx.client.post<EvacuationStep[]>(
        `/v1/farm/hosts/${encodeURIComponent(host)}/evacuate`,
      );
      emit(
        ctx,
        steps,
        () =>
          steps.length === 0 ? `Host ${host} ran no domain; it is in maintenance` : formatTable(
            ["Domain", "To", "Result"],
            steps.map((
              s,
            ) => [s.domain, s.to ?? "-", s.status === "moved" ? "moved" : `failed: ${s.error}`]),
          ),
      );
      return steps.some((s) => s.status === "failed") ? 1 : 0;
    },
  },
];

/** `denovisor farm ...`. */
export function farmCommand(args: string[]): Promise<number> {
  return runGroupCli("farm", INTRO, FARM_SUBCOMMANDS, args);
}
