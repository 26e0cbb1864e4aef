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

const memSet: DomainVerb = {
  name: "mem-set",
  aliases: ["setmem"],
  summary: "Set the memory a running domain's guest may use (through the balloon)",
  help: `Usage: denovisor mem-set NAME SIZE [--json]      (alias: setmem)

Sets the memory target of the running domain NAME: the balloon device takes back (or
returns) guest pages until the guest has SIZE. SIZE has a unit (512M, 1G, 1.5G); a bare
number is MiB, as in 'xl mem-set'. The domain needs 'balloon: true' in its definition.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain", "size"],
  completes: ["running", "paused"],
  async run(context, values, [name, sizeText]) {
    const targetBytes = parseSizeArgument(sizeText, "mem-set SIZE", "m");
    const info = await context.client.put<DomainInfo>(domainPath(name, "/memory"), {
      targetBytes,
    });
    return report(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' memory target set to ${formatSize(targetBytes)}`,
    );
  },
};

const vcpuCount: DomainVerb = {
  name: "vcpu-count",
  summary: "Show a domain's number of vCPUs",
  help: `Usage: denovisor vcpu-count NAME [--json]

Prints the number of vCPUs of domain NAME.

Options:
  --json   Print {"name", "vcpus"} as JSON`,
  json: true,
  args: ["domain"],
  async run(context, values, [name]) {
    const info = await context.client.get<DomainInfo>(domainPath(name));
    context.io.out(
      values.json ? formatJson({ name: info.name, vcpus: info.vcpus }) : String(info.vcpus),
    );
    return CLIENT_EXIT.OK;
  },
};

const vcpuSet: DomainVerb = {
  name: "vcpu-set",
  aliases: ["setvcpus"],
  summary: "Set a domain's number of vCPUs (from its next start if running)",
  help: `Usage: denovisor vcpu-set NAME COUNT [--json]      (alias: setvcpus)

Sets the number of vCPUs of domain NAME to COUNT. Denovisor has no vCPU hotplug: a
running domain keeps its vCPUs until its next start (the daemon says so).

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain", "count"],
  async run(context, values, [name, countText]) {
    if (!/^\d+$/.test(countText) || Number(countText) < 1) {
      throw new UsageError(`vcpu-set COUNT: expected a whole number from 1, got '${countText}'`);
    }
    const count = Number(countText);
    const info = await context.client.put<DomainInfo>(domainPath(name, "/vcpus"), { count });
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
