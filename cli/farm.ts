/**
 * `denovisor farm`: the farm a daemon belongs to (manager/farm/), through any of its
 * hosts' daemons: status, events; hosts, maintenance and evacuate are `denovisor host`'s
 * list, maintenance and evacuate (cli/host.ts) under their first names.
 *
 * @module
 */

import type { EventRecord, FarmStatus } from "../manager/farm/farm_api.ts";
import { formatFields, formatTable } from "./output.ts";
import { emit, runGroupCli, type Subcommand } from "./pool_output.ts";
import { HOST_EVACUATE, HOST_LIST, HOST_MAINTENANCE, hostTable } from "./host.ts";

const INTRO = `A farm is many hosts managed as one: each daemon started with --etcd URL --host NAME
keeps the farm's state in etcd (hosts, definitions, which host runs each domain). Domains
defined on any host are known to all; 'denovisor start NAME --host auto' places a domain
on the host with the most free memory; 'migrate NAME' without a destination moves it live
to the host placement picks; a domain with "ha": true restarts on another host when its
host is lost. 'denovisor host' lists, inspects, evacuates and removes hosts. See
docs/farm.md.

Example:
  denovisor farm status
  denovisor host maintenance host2 on && denovisor host evacuate host2`;

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
              "Endpoints",
              status.etcd.endpoints?.map((e) =>
                `${e.endpoint} ${
                  e.ok ? (e.leader ? "up (leader)" : "up") : `DOWN (${e.error ?? "no answer"})`
                }`
              ).join(", "),
            ],
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
  { ...HOST_LIST, name: "hosts", summary: "The hosts (as 'host list')" },
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
  { ...HOST_MAINTENANCE, summary: HOST_MAINTENANCE.summary + " (as 'host maintenance')" },
  { ...HOST_EVACUATE, summary: HOST_EVACUATE.summary + " (as 'host evacuate')" },
];

/** `denovisor farm ...`. */
export function farmCommand(args: string[]): Promise<number> {
  return runGroupCli("farm", INTRO, FARM_SUBCOMMANDS, args);
}
