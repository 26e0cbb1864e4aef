/**
 * list (ls) and info (dominfo): what domains there are and what state they are in.
 *
 * @module
 */

import type { DomainInfo, DomainStats, DomainSummary } from "../manager/api_types.ts";
import { domainPath, type DomainVerb } from "./domain_verb.ts";
import { CLIENT_EXIT, formatFields, formatJson, formatTable, printable } from "./output.ts";
import { formatSize } from "../common/units.ts";
import { UsageError } from "./usage_error.ts";

const list: DomainVerb = {
  name: "list",
  aliases: ["ls"],
  summary: "List domains (all by default; --running, --inactive)",
  help: `Usage: denovisor list [--running | --inactive] [--name] [--json]      (alias: ls)

Lists domains: Id (the domain id while it runs, '-' otherwise: given at each start and
never given again while the daemon's state lives, as xl's domid), name, state, vCPUs,
memory, autostart, and whether it is transient (made by 'create': gone once it stops).
The VMM's process id is in 'info'. Unlike virsh (running only) and like xl, every domain
is listed by default; --all is accepted for virsh habits.

States: running, paused, starting, shutting-down, crashed (kept after a crash with
on_crash=preserve), shutoff (defined, not running).

Options:
  --all        Every domain (the default)
  --running    Only domains with a VMM (running, paused, starting, shutting down, crashed)
  --inactive   Only domains that are shut off
  --name       Print only the names, one per line
  --json       Print DomainSummary objects as a JSON array`,
  options: {
    all: { type: "boolean", short: "a" },
    running: { type: "boolean" },
    inactive: { type: "boolean" },
    name: { type: "boolean" },
  },
  json: true,
  args: [],
  async run(context, values) {
    if (values.running && values.inactive) {
      throw new UsageError("list: --running and --inactive exclude each other; give one");
    }
    let domains = await context.client.get<DomainSummary[]>("/v1/domains");
    if (values.running) domains = domains.filter((domain) => domain.state !== "shutoff");
    if (values.inactive) domains = domains.filter((domain) => domain.state === "shutoff");
    domains = domains.toSorted((a, b) => a.name.localeCompare(b.name));
    if (values.json) {
      context.io.out(formatJson(domains));
    } else if (values.name) {
      for (const domain of domains) context.io.out(printable(domain.name));
    } else {
      // In a farm every domain has a host column (the daemon fills `host`).
      const farm = domains.some((domain) => domain.host !== undefined);
      context.io.out(formatTable(
        [
          "Id",
          "Name",
          "State",
          "vCPUs",
          "Memory",
          "Autostart",
          "Transient",
          ...(farm ? ["Host"] : []),
        ],
        domains.map((domain) => [
          domain.id ?? "-",
          domain.name,
          domain.state,
          // A running domain whose next start differs: "2 -> 4".
          domain.next?.vcpus === undefined
            ? domain.vcpus
            : `${domain.vcpus} -> ${domain.next.vcpus}`,
          formatSize(domain.memoryBytes) +
          (domain.next?.memoryBytes === undefined
            ? ""
            : ` -> ${formatSize(domain.next.memoryBytes)}`),
          domain.autostart ? "yes" : "no",
          domain.persistent ? "no" : "yes",
          ...(farm ? [domain.host ?? "-"] : []),
        ]),
        { align: ["right", "left", "left", "right", "right", "left", "left", "left"] },
      ));
    }
    return CLIENT_EXIT.OK;
  },
};

const info: DomainVerb = {
  name: "info",
  aliases: ["dominfo"],
  summary: "Show a domain's state and configuration",
  help: `Usage: denovisor info NAME [--definition] [--json]      (alias: dominfo)

Shows the domain NAME: state, domain id and VMM process while it runs, vCPUs, memory,
autostart, boot, devices (with the tap device each NIC really has while it runs), why
its last run ended, and where its console socket and log file are.

Options:
  --definition   Print only its definition as JSON (defaults filled in), as 'edit' shows it
  --json         Print DomainInfo as JSON`,
  options: { definition: { type: "boolean" } },
  json: true,
  args: ["domain"],
  async run(context, values, [name]) {
    const domain = await context.client.get<DomainInfo>(domainPath(name));
    if (values.definition) {
      context.io.out(formatJson(domain.definition));
    } else if (values.json) {
      context.io.out(formatJson(domain));
    } else {
      // The taps the VMM really opened (a NIC without "tap" gets one made up).
      const stats = domain.pid === undefined ? undefined : await context.client
        .get<DomainStats>(domainPath(name, "/stats")).catch(() => undefined);
      context.io.out(describeDomain(domain, stats));
    }
    return CLIENT_EXIT.OK;
  },
};

/** `info`'s human form; `stats` (of the running VMM) gives the NICs' real taps. */
export function describeDomain(domain: DomainInfo, stats?: DomainStats): string {
  const definition = domain.definition;
  const boot = "demo" in definition.boot
    ? "embedded demo guest"
    : "firmware" in definition.boot
    ? `firmware ${definition.boot.firmware}`
    : `kernel ${definition.boot.kernel}` +
      (definition.boot.initrd ? `, initrd ${definition.boot.initrd}` : "");
  const disks = (definition.disks ?? []).map((disk) =>
    (disk.volume ? `${disk.pool ?? "default"}/${disk.volume}` : disk.path ?? "?") +
    (disk.readOnly ? " (read-only)" : "")
  );
  const nics = (definition.nics ?? []).map((nic, index) => {
    const running = stats?.nics.find((each) => nic.mac !== undefined && each.mac === nic.mac) ??
      stats?.nics[index];
    const tap = running?.tap || nic.tap || "auto";
    return `${nic.mac ?? "auto MAC"} on ${tap}${nic.bridge ? ` (bridge ${nic.bridge})` : ""}`;
  });
  const farm = domain as { host?: string; hostState?: string };
  const farmHost = {
    host: farm.host,
    state: farm.hostState === undefined ? undefined : `${farm.hostState} (on host ${farm.host})`,
  };
  return formatFields([
    ["Name", domain.name],
    ["UUID", domain.uuid],
    // In a farm, a domain running on another host: its state there.
    ["State", farmHost.state ?? domain.state],
    ["Host", farmHost.host],
    ["Id", domain.id],
    ["VMM pid", domain.pid],
    ["Started", domain.startedAt],
    [
      "vCPUs",
      `${domain.vcpus}` +
      (domain.next?.vcpus === undefined ? "" : ` (${domain.next.vcpus} at next start)`),
    ],
    [
      "Memory",
      formatSize(domain.memoryBytes) +
      (domain.next?.memoryBytes === undefined
        ? ""
        : ` (${formatSize(domain.next.memoryBytes)} at next start)`),
    ],
    ["Persistent", domain.persistent ? "yes" : "no (transient)"],
    ["Autostart", domain.autostart ? "enabled" : "disabled"],
    ["Boot", boot],
    ["Disks", disks.join(", ") || "none"],
    ["NICs", nics.join(", ") || "none"],
    [
      "On events",
      `poweroff=${definition.onPoweroff ?? "destroy"} reboot=${
        definition.onReboot ?? "restart"
      } crash=${definition.onCrash ?? "destroy"}`,
    ],
    ["Last end", domain.lastEnd],
    ["Console", domain.consoleSocket],
    ["Log file", domain.logFile],
  ]);
}

/** list, info. */
export const LIST_VERBS: DomainVerb[] = [list, info];
