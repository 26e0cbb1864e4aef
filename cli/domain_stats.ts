/**
 * stats (domstats) and logs: what a running domain is doing, and what it printed.
 *
 * @module
 */

import {
  type DomainInfo,
  type DomainStats,
  type DomainSummary,
  LOG_EARLIER_HEADER,
} from "../manager/api_types.ts";
import { domainPath, type DomainVerb, stringOption, type VerbContext } from "./domain_verb.ts";
import {
  CLIENT_EXIT,
  formatFields,
  formatJson,
  formatSeconds,
  formatTable,
  printable,
} from "./output.ts";
import { formatSize } from "../common/units.ts";
import { UsageError } from "./usage_error.ts";

/** How often `logs --follow` looks for new output. */
const FOLLOW_POLL_MS = 200;

const stats: DomainVerb = {
  name: "stats",
  aliases: ["domstats"],
  summary: "Show CPU time per vCPU, memory, disk and NIC counters",
  help: `Usage: denovisor stats [NAME] [--json]      (alias: domstats)

Shows the counters of the running domain NAME (of every running domain without NAME):
CPU time of each vCPU thread, guest memory and what the balloon holds, the VMM's resident
memory, and per-disk and per-NIC counters.

Options:
  --json   Print DomainStats as JSON (an array without NAME)`,
  json: true,
  args: ["domain"],
  completes: ["running", "paused", "starting", "shutting-down", "crashed"],
  optional: 1,
  async run(context, values, [name]) {
    let names = [name];
    if (name === undefined) {
      const domains = await context.client.get<DomainSummary[]>("/v1/domains");
      names = domains.filter((domain) => domain.pid !== undefined).map((domain) => domain.name)
        .sort();
    }
    const all: DomainStats[] = [];
    for (const each of names) {
      all.push(await context.client.get<DomainStats>(domainPath(each, "/stats")));
    }
    if (values.json) {
      context.io.out(formatJson(name === undefined ? all : all[0]));
    } else {
      context.io.out(all.map(describeStats).join("\n\n") || "No running domains");
    }
    return CLIENT_EXIT.OK;
  },
};

/** `stats`'s human form. */
export function describeStats(stats: DomainStats): string {
  const memory = stats.memory;
  const parts = [formatFields([
    ["Domain", stats.name],
    ["State", stats.state],
    ...stats.vcpus.map((vcpu): [string, string] => [
      `vCPU ${vcpu.index} time`,
      vcpu.cpuTimeNs === undefined ? "not known (off-thread)" : formatSeconds(vcpu.cpuTimeNs / 1e9),
    ]),
    ["Guest memory", formatSize(memory.guestBytes)],
    ["Available", formatSize(memory.availableBytes)],
    ["Balloon", formatSize(memory.balloonBytes)],
    ["VMM RSS", formatSize(memory.rssBytes)],
    ...(stats.cgroup === undefined ? [] : [
      [
        "cgroup memory",
        `${formatSize(stats.cgroup.memoryBytes)} of ${
          stats.cgroup.memoryLimitBytes === undefined
            ? "no limit"
            : formatSize(stats.cgroup.memoryLimitBytes)
        }`,
      ] as [string, string],
      ["cgroup pids", String(stats.cgroup.pids)] as [string, string],
      ["OOM kills", String(stats.cgroup.oomKills)] as [string, string],
    ]),
  ])];
  if (stats.disks.length > 0) {
    parts.push(formatTable(
      ["Disk", "Reads", "Read", "Writes", "Written", "Flushes", "Errors", "Path"],
      stats.disks.map((disk) => [
        disk.name,
        disk.readRequests,
        formatSize(disk.readBytes),
        disk.writeRequests,
        formatSize(disk.writeBytes),
        disk.flushes,
        disk.errors,
        disk.path,
      ]),
      { align: ["left", "right", "right", "right", "right", "right", "right", "left"] },
    ));
  }
  if (stats.nics.length > 0) {
    parts.push(formatTable(
      ["NIC", "Tap", "MAC", "Rx frames", "Rx", "Tx frames", "Tx", "Rx dropped"],
      stats.nics.map((nic) => [
        nic.name,
        nic.tap,
        nic.mac,
        nic.rxFrames,
        formatSize(nic.rxBytes),
        nic.txFrames,
        formatSize(nic.txBytes),
        nic.rxDropped,
      ]),
      { align: ["left", "left", "left", "right", "right", "right", "right", "right"] },
    ));
  }
  return parts.join("\n\n");
}

const logs: DomainVerb = {
  name: "logs",
  summary: "Show a domain's console output and VMM log (--follow to keep watching)",
  help: `Usage: denovisor logs NAME [--lines N] [--follow]

Prints the log of domain NAME: its serial console output and the VMM's own log lines,
kept across runs. Control characters from the guest are shown as '?'. Only the last
100 lines are shown unless --lines says otherwise; when there is earlier output, a note
on stderr says so (the log is kept bounded: older output moves to the log file's .1).

Options:
  -n, --lines N   Only the last N lines (default 100, at most 10000)
  -f, --follow    Keep printing new output as it comes (Ctrl-C stops)`,
  options: {
    lines: { type: "string", short: "n" },
    follow: { type: "boolean", short: "f" },
  },
  args: ["domain"],
  async run(context, values, [name]) {
    const linesText = stringOption(values, "lines");
    let query = "";
    if (linesText !== undefined) {
      if (!/^\d+$/.test(linesText)) {
        throw new UsageError(`logs --lines: expected a whole number, got '${linesText}'`);
      }
      query = `?lines=${Number(linesText)}`;
    }
    const response = await context.client.request("GET", domainPath(name, `/logs${query}`));
    const text = await response.text();
    if (text.length > 0) context.io.out(printableLog(text).replace(/\n$/, ""));
    if (response.headers.get(LOG_EARLIER_HEADER) === "some") {
      const shown = text === "" ? 0 : text.replace(/\n$/, "").split("\n").length;
      context.io.err(
        `logs: the last ${shown} lines only; 'denovisor logs ${printable(name)} --lines N' ` +
          `shows more (up to 10000)`,
      );
    }
    if (values.follow) {
      const info = await context.client.get<DomainInfo>(domainPath(name));
      await followFile(context, info.logFile);
    }
    return CLIENT_EXIT.OK;
  },
};

/** Log text with the guest's control characters made harmless (newlines and tabs kept). */
export function printableLog(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\r\n/g, "\n").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?");
}

/** Prints what is appended to `path` until the context's signal aborts. */
async function followFile(context: VerbContext, path: string): Promise<void> {
  let position: number;
  try {
    position = (await Deno.stat(path)).size;
  } catch (error) {
    throw new Error(
      `Cannot follow the log file ${path}: ${(error as Error).message}; ` +
        `run as root on the daemon's host`,
    );
  }
  const decoder = new TextDecoder();
  let pending = "";
  const buffer = new Uint8Array(65536);
  while (!context.signal.aborted) {
    const size = await Deno.stat(path).then((info) => info.size, () => position);
    if (size < position) position = 0; // truncated or replaced
    if (size > position) {
      using file = await Deno.open(path);
      await file.seek(position, Deno.SeekMode.Start);
      let count: number | null;
      while ((count = await file.read(buffer)) !== null) {
        position += count;
        pending += decoder.decode(buffer.subarray(0, count), { stream: true });
      }
      const lastNewline = pending.lastIndexOf("\n");
      if (lastNewline >= 0) {
        context.io.out(printableLog(pending.slice(0, lastNewline)));
        pending = pending.slice(lastNewline + 1);
      }
    }
    await sleep(FOLLOW_POLL_MS, context.signal);
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** stats, logs. */
export const STATS_VERBS: DomainVerb[] = [stats, logs];
