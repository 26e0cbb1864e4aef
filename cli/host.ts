/**
 * `denovisor host`: the hosts of the farm this daemon belongs to (manager/farm/), asked
 * through any of them: list, info, maintenance, evacuate, remove. `farm hosts`, `farm
 * maintenance` and `farm evacuate` are the same code.
 *
 * @module
 */

import type { EvacuationStep, FarmHost, FarmHostInfo } from "../manager/farm/farm_api.ts";
import { formatFields, formatTable } from "./output.ts";
import { emit, runGroupCli, type Subcommand } from "./pool_output.ts";
import { UsageError } from "./usage_error.ts";

const INTRO = `The hosts of the farm this daemon belongs to (a daemon started with --etcd URL
--host NAME joins one; see docs/farm.md). Any host's daemon answers for all of them.

Example:
  denovisor host list
  denovisor host maintenance host2 on && denovisor host evacuate host2`;

const MIB = 2 ** 20;

/** The host table of `host list` and `farm status`. */
export function hostTable(hosts: FarmHost[]): string {
  return formatTable(
    ["Host", "Address", "State", "Free memory", "Free vCPUs", "Domains", "Migration", "Labels"],
    hosts.map((h) => [
      h.name,
      h.address,
      h.state ?? (h.maintenance ? "maintenance" : "up"),
      h.state === "down"
        ? "-"
        : `${Math.floor(h.freeMemoryBytes / MIB)}/${Math.floor(h.capacity.memoryBytes / MIB)} MiB`,
      h.state === "down" ? "-" : `${h.freeVcpus}/${h.capacity.vcpus}`,
      h.domains.length,
      h.migrationListen ?? "-",
      Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
    ]),
    { align: ["left", "left", "left", "right", "right", "right"] },
  );
}

function hostPath(host: string, rest = ""): string {
  return `/v1/farm/hosts/${encodeURIComponent(host)}${rest}`;
}

/** `host list` (`farm hosts`). */
export const HOST_LIST: Subcommand = {
  name: "list",
  usage: "",
  summary: "Every host: its state (up, maintenance, down), free memory and vCPUs",
  min: 0,
  max: 0,
  run: async (ctx) => {
    const hosts = await ctx.client.get<FarmHost[]>("/v1/farm/hosts?all=1");
    return emit(ctx, hosts, () => hosts.length === 0 ? " No host." : hostTable(hosts));
  },
};

const HOST_INFO: Subcommand = {
  name: "info",
  usage: "HOST",
  summary: "One host: capacity, load, labels, migration listener, domains, last events",
  min: 1,
  max: 1,
  run: async (ctx) => {
    const info = await ctx.client.get<FarmHostInfo>(hostPath(ctx.positionals[0]));
    return emit(ctx, info, () =>
      [
        formatFields([
          ["Host", info.name],
          ["State", info.state],
          ["Address", info.address],
          [
            "Memory",
            `${Math.floor(info.capacity.memoryBytes / MIB)} MiB offered` + (
              info.state === "down" ? "" : `, ${Math.floor(info.freeMemoryBytes / MIB)} MiB free`
            ),
          ],
          [
            "vCPUs",
            `${info.capacity.vcpus} offered` + (
              info.state === "down" ? "" : `, ${info.freeVcpus} free`
            ),
          ],
          ["Labels", Object.entries(info.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
          ["Pools", info.pools?.join(", ") || "-"],
          ["Migration", info.migrationListen ?? "none (domains move by stop and start)"],
          ["Version", info.version],
          ["Joined", info.joinedAt],
          ["Updated", info.updatedAt],
          [
            "Domains",
            info.running.map((r) => r.domain + (r.detached ? " (daemon stopped)" : "")).join(
              ", ",
            ) || "-",
          ],
        ]),
        "",
        info.events.length === 0 ? " No recent event." : formatTable(
          ["Time", "Host", "Event", "Domain", "Detail"],
          info.events.map((e) => [e.time, e.host, e.kind, e.domain ?? "-", e.detail ?? ""]),
        ),
      ].join("\n"));
  },
};

/** `host maintenance HOST on|off` (`farm maintenance`). */
export const HOST_MAINTENANCE: Subcommand = {
  name: "maintenance",
  usage: "HOST on|off",
  summary: "Keep new domains off HOST (on) or allow them again (off)",
  min: 2,
  max: 2,
  run: async (ctx) => {
    const [host, mode] = ctx.positionals;
    if (mode !== "on" && mode !== "off") {
      throw new UsageError(`${ctx.calledAs}: expected on or off, got '${mode}'`);
    }
    const info = await ctx.client.put<FarmHost>(hostPath(host, "/maintenance"), {
      enabled: mode === "on",
    });
    return emit(ctx, info, () => `Host ${host}: maintenance ${mode}`);
  },
};

function stepLine(step: EvacuationStep): string {
  const at = step.index === undefined ? "" : `[${step.index}/${step.total}] `;
  if (step.status === "failed") return `${at}${step.domain}: FAILED: ${step.error}`;
  const how = step.how === "live" ? "live migration" : "stop and start";
  if (step.status === "moving") {
    return `${at}${step.domain} -> ${step.to}: ${how}...` + (step.note ? ` (${step.note})` : "");
  }
  return `${at}${step.domain} -> ${step.to}: moved by ${how} in ${step.seconds ?? "?"} s` +
    (step.note ? ` (${step.note})` : "");
}

/** `host evacuate HOST` (`farm evacuate`). */
export const HOST_EVACUATE: Subcommand = {
  name: "evacuate",
  usage: "HOST",
  summary: "Move every domain off HOST (maintenance on; each placed, migrated live)",
  details: `Each domain is placed as 'start --host auto' would place it, HOST excluded, and
migrated live when both hosts have a --migration-listen; a domain that cannot
migrate is stopped and started on its new host instead, and its line says so.
One line per domain as it moves; --json prints the steps once it is over.`,
  min: 1,
  max: 1,
  run: async (ctx) => {
    const host = ctx.positionals[0];
    const response = await ctx.client.request("POST", hostPath(host, "/evacuate?progress=1"), {});
    const steps: EvacuationStep[] = [];
    let failure: string | undefined;
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    while (true) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffered += chunk.value;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === "") continue;
        const step = JSON.parse(line) as EvacuationStep | { error: string; domain?: undefined };
        if (step.domain === undefined) {
          failure = step.error;
          continue;
        }
        if (step.status !== "moving") steps.push(step);
        if (!ctx.values.json) ctx.io.out(stepLine(step));
      }
    }
    if (failure !== undefined) throw new Error(`host evacuate ${host}: ${failure}`);
    if (ctx.values.json) emit(ctx, steps, () => "");
    else {
      const moved = steps.filter((s) => s.status === "moved");
      if (steps.length > 0) {
        ctx.io.out(formatTable(
          ["Domain", "To", "Result", "How"],
          steps.map((s) => [
            s.domain,
            s.to ?? "-",
            s.status === "moved" ? "moved" : `failed: ${s.error}`,
            s.status !== "moved" ? "-" : s.how === "live" ? "live" : "stop and start",
          ]),
        ));
      }
      ctx.io.out(
        steps.length === 0
          ? `Host ${host} ran no domain; it is in maintenance`
          : `Host ${host}: ${moved.length} of ${steps.length} domains moved ` +
            `(${moved.filter((s) => s.how === "live").length} live); it is in maintenance`,
      );
    }
    return steps.some((s) => s.status === "failed") ? 1 : 0;
  },
};

const HOST_REMOVE: Subcommand = {
  name: "remove",
  usage: "HOST",
  summary: "Forget a host that is down and runs nothing (its daemon stopped for good)",
  details: `A host that is up is refused: evacuate it and stop its daemon first.`,
  min: 1,
  max: 1,
  run: async (ctx) => {
    const host = ctx.positionals[0];
    await ctx.client.delete(hostPath(host));
    return emit(ctx, { removed: host }, () => `Host ${host} removed from the farm`);
  },
};

/** The `host` subcommands. */
export const HOST_SUBCOMMANDS: Subcommand[] = [
  HOST_LIST,
  HOST_INFO,
  HOST_MAINTENANCE,
  HOST_EVACUATE,
  HOST_REMOVE,
];

/** `denovisor host ...`. */
export function hostCommand(args: string[]): Promise<number> {
  return runGroupCli("host", INTRO, HOST_SUBCOMMANDS, args);
}
