/**
 * mem-set (setmem), vcpu-count, vcpu-set (setvcpus) and autostart: changing a domain's
 * resources and whether it starts with the daemon.
 *
 * @module
 */

import type { DomainInfo } from "../manager/api_types.ts";
import { domainPath, type DomainVerb, reportDomain, type VerbContext } from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";
import { formatSize } from "../common/units.ts";
import { parseSizeArgument, UsageError } from "./usage_error.ts";

function report(context: VerbContext, info: DomainInfo, json: boolean, done: string): number {
  reportDomain(context, info, json, done);
  return CLIENT_EXIT.OK;
}

/** virsh's --live, --config and --current, as the API's scope fields. */
const SCOPE_OPTIONS = {
  live: { type: "boolean" },
  config: { type: "boolean" },
  current: { type: "boolean" },
} as const;

const SCOPE_HELP = `  --live      Change the running guest
  --config    Change the definition: from the domain's next start
  --current   --live while the domain runs, --config when not (not with the others)`;

/** The scope fields of a mem-set or vcpu-set request. */
function scope(verb: string, values: Record<string, unknown>) {
  if (values.current && (values.live || values.config)) {
    throw new UsageError(`${verb}: --current is --live or --config; give it alone`);
  }
  return {
    ...(values.live ? { live: true } : {}),
    ...(values.config ? { config: true } : {}),
    ...(values.current ? { current: true } : {}),
  };
}

const memSet: DomainVerb = {
  name: "mem-set",
  aliases: ["setmem"],
  summary: "Set a domain's memory: the running guest's balloon, or from its next start",
  help: `Usage: denovisor mem-set NAME SIZE [--live] [--config] [--current] [--json]
       (alias: setmem)

Sets the memory of domain NAME to SIZE. --live: the balloon device of the running guest
takes back (or returns) pages until the guest has SIZE (at most the RAM it started with;
the definition needs 'balloon: true'). --config: the guest's RAM from its next start (the
definition's memory). Both: both. Neither, or --current: --live while the domain runs,
--config when it is shut off, as in virsh. SIZE has a unit (512M, 1G, 1.5G); a bare
number is MiB, as in 'xl mem-set'.

Options:
${SCOPE_HELP}
  --json      Print the domain's info as JSON`,
  options: SCOPE_OPTIONS,
  json: true,
  args: ["domain", "size"],
  completes: ["running", "paused"],
  async run(context, values, [name, sizeText]) {
    const targetBytes = parseSizeArgument(sizeText, "mem-set SIZE", "m");
    const info = await context.client.put<DomainInfo>(domainPath(name, "/memory"), {
      targetBytes,
      ...scope("mem-set", values),
    });
    return report(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' memory ${
        info.state === "shutoff"
          ? ""
          : info.next?.memoryBytes === targetBytes
          ? "at next start "
          : "target "
      }set to ${formatSize(targetBytes)}`,
    );
  },
};

const vcpuCount: DomainVerb = {
  name: "vcpu-count",
  summary: "Show a domain's number of vCPUs (and its next start's, where it differs)",
  help: `Usage: denovisor vcpu-count NAME [--live | --config] [--json]

Prints the number of vCPUs of domain NAME: the ones it runs with, followed by
"(N at next start)" when an edit or vcpu-set changed them since it started.
--live prints only the running count (the current one when shut off), --config only the
count of its next start.

Options:
  --live     Only the count it runs with
  --config   Only the count of its next start
  --json     Print {"name", "vcpus", "nextVcpus"} as JSON (nextVcpus when it differs)`,
  options: { live: { type: "boolean" }, config: { type: "boolean" } },
  json: true,
  args: ["domain"],
  async run(context, values, [name]) {
    if (values.live && values.config) {
      throw new UsageError("vcpu-count: --live and --config exclude each other; give one");
    }
    const info = await context.client.get<DomainInfo>(domainPath(name));
    const next = info.next?.vcpus;
    if (values.json) {
      context.io.out(
        formatJson({ name: info.name, vcpus: info.vcpus, ...(next ? { nextVcpus: next } : {}) }),
      );
    } else if (values.live) {
      context.io.out(String(info.vcpus));
    } else if (values.config) {
      context.io.out(String(next ?? info.vcpus));
    } else {
      context.io.out(`${info.vcpus}${next === undefined ? "" : ` (${next} at next start)`}`);
    }
    return CLIENT_EXIT.OK;
  },
};

const vcpuSet: DomainVerb = {
  name: "vcpu-set",
  aliases: ["setvcpus"],
  summary: "Set a domain's number of vCPUs (from its next start if running)",
  help: `Usage: denovisor vcpu-set NAME COUNT [--config] [--live] [--current] [--json]
       (alias: setvcpus)

Sets the number of vCPUs of domain NAME to COUNT in its definition (--config, the
default): a running domain keeps its vCPUs until its next start, and 'list', 'info' and
'vcpu-count' show both. Denovisor has no vCPU hotplug, so --live (and --current on a
running domain) is refused.

Options:
${SCOPE_HELP}
  --json      Print the domain's info as JSON`,
  options: SCOPE_OPTIONS,
  json: true,
  args: ["domain", "count"],
  async run(context, values, [name, countText]) {
    if (!/^\d+$/.test(countText) || Number(countText) < 1) {
      throw new UsageError(`vcpu-set COUNT: expected a whole number from 1, got '${countText}'`);
    }
    const count = Number(countText);
    const info = await context.client.put<DomainInfo>(domainPath(name, "/vcpus"), {
      count,
      ...scope("vcpu-set", values),
    });
    return report(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' vCPU count set to ${count}`,
    );
  },
};

const autostart: DomainVerb = {
  name: "autostart",
  summary: "Start a domain when the daemon starts (on/off, --disable)",
  help: `Usage: denovisor autostart NAME [on|off] [--disable] [--json]

Marks domain NAME to be started when the daemon starts (at boot with the systemd unit).
'off' or --disable (as in virsh) clears the mark.

Options:
  --disable   Same as 'off'
  --json      Print the domain's info as JSON`,
  options: { disable: { type: "boolean" } },
  json: true,
  args: ["domain", "onoff"],
  optional: 1,
  async run(context, values, [name, onOff]) {
    if (onOff !== undefined && !["on", "off", "enable", "disable"].includes(onOff)) {
      throw new UsageError(`autostart: expected 'on' or 'off', got '${onOff}'`);
    }
    const enabled = !(values.disable === true || onOff === "off" || onOff === "disable");
    if (values.disable && (onOff === "on" || onOff === "enable")) {
      throw new UsageError("autostart: 'on' and --disable contradict each other; give one");
    }
    const info = await context.client.put<DomainInfo>(domainPath(name, "/autostart"), {
      enabled,
    });
    return report(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' ${
        enabled ? "marked as autostarted" : "unmarked as autostarted"
      }`,
    );
  },
};

/** mem-set, vcpu-count, vcpu-set, autostart. */
export const TUNE_VERBS: DomainVerb[] = [memSet, vcpuCount, vcpuSet, autostart];
