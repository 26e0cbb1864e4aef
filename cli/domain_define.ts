/**
 * define, create and undefine: domains from definition files (JSON or xl.cfg).
 * `define` makes a persistent domain (or updates one, as virsh define does); `create`
 * makes a transient one that starts at once and is gone when it stops, as in xl and virsh.
 *
 * @module
 */

import { ApiClientError } from "../manager/api_client.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { attachConsole } from "./domain_console.ts";
import { readVerbDefinition } from "./domain_file.ts";
import { domainPath, type DomainVerb, reportDomain, type VerbContext } from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";

/** Whether domain `name` exists (false on 404). */
export async function domainExists(context: VerbContext, name: string): Promise<boolean> {
  try {
    await context.client.get<DomainInfo>(domainPath(name));
    return true;
  } catch (error) {
    if (error instanceof ApiClientError && error.code === "not_found") return false;
    throw error;
  }
}

const define: DomainVerb = {
  name: "define",
  summary: "Define a domain from a JSON or xl.cfg file (or update its definition)",
  help: `Usage: denovisor define FILE [--json]

Defines a persistent domain from FILE: the JSON definition (docs/domain.md) or a Xen
xl.cfg file (name, memory, vcpus, kernel, ramdisk, extra/cmdline, disk, vif, on_*),
told apart by content. Relative paths in FILE are taken from FILE's directory. If a
domain of that name exists, its definition is replaced (a running domain uses the new
one at its next start), as virsh define does. The domain is not started.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["file"],
  async run(context, values, [file]) {
    const definition = await readVerbDefinition(context, file);
    const exists = await domainExists(context, definition.name);
    const info = exists
      ? await context.client.put<DomainInfo>(domainPath(definition.name), definition)
      : await context.client.post<DomainInfo>("/v1/domains", definition);
    const how = exists ? "definition updated" : "defined";
    reportDomain(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' ${how} from ${printable(file)}`,
    );
    return CLIENT_EXIT.OK;
  },
};

const create: DomainVerb = {
  name: "create",
  summary: "Create and start a transient domain from a JSON or xl.cfg file",
  help: `Usage: denovisor create FILE [--console] [--json]

Creates a transient domain from FILE (JSON definition or xl.cfg, as for 'define') and
starts it at once, as 'xl create' and 'virsh create' do. A transient domain is forgotten
when it stops; use 'define' then 'start' for one that stays.

Options:
  -c, --console   Attach to the console once started (detach with Ctrl-])
  --json          Print the domain's info as JSON`,
  options: { console: { type: "boolean", short: "c" } },
  json: true,
  args: ["file"],
  async run(context, values, [file]) {
    const definition = await readVerbDefinition(context, file);
    const info = await context.client.post<DomainInfo>(
      "/v1/domains?start=1&transient=1",
      definition,
    );
    if (values.json) {
      context.io.out(formatJson(info));
    } else {
      context.io.out(`Domain '${printable(info.name)}' created from ${printable(file)}`);
    }
    if (values.console) return await attachConsole(context, info.name, { readOnly: false });
    return CLIENT_EXIT.OK;
  },
};

const undefine: DomainVerb = {
  name: "undefine",
  summary: "Remove a domain's definition",
  help: `Usage: denovisor undefine NAME

Removes the definition of domain NAME. Its disks and volumes are kept. A running domain
must be shut down or destroyed first (exit status 5 otherwise).`,
  args: ["domain"],
  completes: ["shutoff"],
  async run(context, _values, [name]) {
    await context.client.delete(domainPath(name));
    context.io.out(`Domain '${printable(name)}' has been undefined`);
    return CLIENT_EXIT.OK;
  },
};

/** define, create, undefine. */
export const DEFINE_VERBS: DomainVerb[] = [define, create, undefine];
