/**
 * Domain snapshots: `denovisor snapshot create|list|info|revert|delete DOMAIN [NAME]`, and
 * virsh's names for the same verbs (snapshot-create-as, snapshot-list, snapshot-info,
 * snapshot-revert, snapshot-delete). A snapshot of a running domain holds its disks,
 * memory and devices at one instant; the daemon keeps its metadata under
 * `<state dir>/snapshots/<domain>/<name>/`.
 *
 * @module
 */

import type { DomainInfo, SnapshotInfo } from "../manager/api_types.ts";
import {
  domainPath,
  type DomainVerb,
  reportDomain,
  stringOption,
  type VerbContext,
} from "./domain_verb.ts";
import { CLIENT_EXIT, formatFields, formatJson, formatTable, printable } from "./output.ts";
import { UsageError } from "./usage_error.ts";

function snapshotPath(domain: string, name = ""): string {
  return domainPath(domain, `/snapshots${name ? `/${encodeURIComponent(name)}` : ""}`);
}

const create: DomainVerb = {
  name: "snapshot-create",
  aliases: ["snapshot-create-as"],
  summary: "Snapshot a domain: disks, and memory when it runs",
  help: `Usage: denovisor snapshot-create DOMAIN NAME [--disk-only] [--description TEXT] [--json]
       (also: snapshot create, snapshot-create-as)

Takes snapshot NAME of DOMAIN. A running or paused domain is paused for the moment it
takes: its memory and devices are saved and every writable disk (each must be a pool
volume) is snapshotted through its pool, then it goes on. A shut-off domain's disks are
snapshotted alone.

Options:
  --disk-only           Only the disks, not the memory (revert leaves the domain off)
  --description TEXT    A line shown by 'snapshot list' and 'snapshot info'
  --json                Print the snapshot as JSON

Example:
  denovisor snapshot create web before-upgrade --description "kernel 6.1"`,
  options: { "disk-only": { type: "boolean" }, description: { type: "string" } },
  json: true,
  args: ["domain", "name"],
  completes: ["running", "paused", "shutoff"],
  async run(context, values, [domain, name]) {
    const description = stringOption(values, "description");
    const snapshot = await context.client.post<SnapshotInfo>(snapshotPath(domain), {
      name,
      ...(values["disk-only"] ? { diskOnly: true } : {}),
      ...(description !== undefined ? { description } : {}),
    });
    if (values.json) {
      context.io.out(formatJson(snapshot));
      return CLIENT_EXIT.OK;
    }
    context.io.out(
      `Snapshot '${printable(name)}' of domain '${printable(domain)}' taken (${
        snapshot.memory ? "disks and memory" : "disks only"
      })`,
    );
    return CLIENT_EXIT.OK;
  },
};

const list: DomainVerb = {
  name: "snapshot-list",
  summary: "List a domain's snapshots",
  help: `Usage: denovisor snapshot-list DOMAIN [--json]      (also: snapshot list)

Lists the snapshots of DOMAIN, oldest first; '*' marks the one the domain was last taken
at or reverted to.

Options:
  --json   Print the snapshots as JSON`,
  json: true,
  args: ["domain"],
  async run(context, values, [domain]) {
    const snapshots = await context.client.get<SnapshotInfo[]>(snapshotPath(domain));
    if (values.json) {
      context.io.out(formatJson(snapshots));
      return CLIENT_EXIT.OK;
    }
    context.io.out(formatTable(
      ["Name", "Created", "State", "Memory", "Parent", "Description"],
      snapshots.map((s) => [
        `${s.name}${s.current ? " *" : ""}`,
        s.createdAt.replace("T", " ").replace(/\.\d+Z$/, "Z"),
        s.domainState,
        s.memory ? "yes" : "no",
        s.parent ?? "-",
        s.description ?? "",
      ]),
    ));
    return CLIENT_EXIT.OK;
  },
};

const info: DomainVerb = {
  name: "snapshot-info",
  summary: "Show one snapshot of a domain",
  help: `Usage: denovisor snapshot-info DOMAIN NAME [--json]      (also: snapshot info)

Shows snapshot NAME of DOMAIN: when it was taken, the domain's state then, whether it
holds memory, its disks and its parent.

Options:
  --json   Print the snapshot as JSON`,
  json: true,
  args: ["domain", "snapshot"],
  async run(context, values, [domain, name]) {
    const s = await context.client.get<SnapshotInfo>(snapshotPath(domain, name));
    if (values.json) {
      context.io.out(formatJson(s));
      return CLIENT_EXIT.OK;
    }
    context.io.out(formatFields([
      ["Name", s.name],
      ["Domain", s.domain],
      ["Created", s.createdAt],
      ["Description", s.description],
      ["Domain state", s.domainState],
      ["Memory", s.memory ? `yes (${s.memoryDataBytes ?? 0} bytes of RAM saved)` : "no"],
      ["Disks", s.disks.map((d) => `${d.id}=${d.pool}/${d.volume}`).join(", ") || "none"],
      ["Parent", s.parent],
      ["Current", s.current ? "yes" : "no"],
    ]));
    return CLIENT_EXIT.OK;
  },
};

const revert: DomainVerb = {
  name: "snapshot-revert",
  summary: "Roll a domain back to a snapshot: disks and memory",
  help: `Usage: denovisor snapshot-revert DOMAIN NAME [--json]      (also: snapshot revert)

Rolls DOMAIN back to snapshot NAME: its VMM (if any) is destroyed, every disk returns to
the snapshot, and a snapshot with memory is resumed from the very instant it was taken
(paused if it was paused). May be repeated. Snapshots taken after NAME are deleted: the
disks' later states go with them.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain", "snapshot"],
  async run(context, values, [domain, name]) {
    const result = await context.client.post<DomainInfo>(
      snapshotPath(domain, name) + "/revert",
      {},
    );
    reportDomain(
      context,
      result,
      values.json === true,
      `Domain '${printable(domain)}' reverted to snapshot '${printable(name)}' (${result.state})`,
    );
    return CLIENT_EXIT.OK;
  },
};

const remove: DomainVerb = {
  name: "snapshot-delete",
  summary: "Delete a snapshot of a domain, merging its disk state",
  help: `Usage: denovisor snapshot-delete DOMAIN NAME      (also: snapshot delete)

Deletes snapshot NAME of DOMAIN: its memory and state files go and each disk's snapshot
is merged as 'vol delete-snapshot' does, so no later state is lost. A running domain is
paused for the merge.`,
  args: ["domain", "snapshot"],
  async run(context, _values, [domain, name]) {
    await context.client.delete(snapshotPath(domain, name));
    context.io.out(`Snapshot '${printable(name)}' of domain '${printable(domain)}' deleted`);
    return CLIENT_EXIT.OK;
  },
};

/** The snapshot verbs, under their virsh names (snapshot-list...). */
export const SNAPSHOT_VERBS: DomainVerb[] = [create, list, info, revert, remove];

/** The words of `denovisor snapshot WORD`. */
export const SNAPSHOT_SUBCOMMANDS = ["create", "list", "info", "revert", "delete"];

/** The verb of `snapshot WORD`, or a usage error naming the words. */
export function snapshotSubcommand(word: string | undefined): DomainVerb {
  const verb = SNAPSHOT_VERBS.find((v) => v.name === `snapshot-${word}`);
  if (verb === undefined || word === undefined) {
    throw new UsageError(
      `snapshot: ${word === undefined ? "missing" : `unknown`} subcommand${
        word === undefined ? "" : ` '${word}'`
      }; use ${SNAPSHOT_SUBCOMMANDS.join(", ")} (denovisor snapshot --help)`,
    );
  }
  return verb;
}

/** `denovisor snapshot --help`. */
export const SNAPSHOT_HELP = `Usage: denovisor snapshot SUBCOMMAND DOMAIN [NAME] [options]

Snapshots of a domain with its memory: disks through their pools, memory and devices
saved in the daemon's state directory (<state dir>/snapshots/<domain>/<name>/).

Subcommands:
${
  SNAPSHOT_VERBS.map((v) => `  ${v.name.slice("snapshot-".length).padEnd(8)} ${v.summary}`).join(
    "\n",
  )
}

'denovisor snapshot SUBCOMMAND --help' shows each one's options.`;

/** Runs `snapshot WORD args...` through `runVerb` (the CLI's or the REPL's runner). */
export async function runSnapshotGroup(
  args: string[],
  runVerb: (verb: DomainVerb, args: string[]) => Promise<number>,
  out: (text: string) => void,
): Promise<number> {
  if (args.length === 0 || ["help", "--help", "-h"].includes(args[0])) {
    out(SNAPSHOT_HELP);
    return args.length === 0 ? CLIENT_EXIT.USAGE : CLIENT_EXIT.OK;
  }
  return await runVerb(snapshotSubcommand(args[0]), args.slice(1));
}

export type { VerbContext };
