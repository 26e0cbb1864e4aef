/**
 * `save` and `restore` (xl save / xl restore, virsh save / restore): a running domain's
 * state and memory to a file, and a domain back from one. Relative paths are made
 * absolute here: the daemon runs elsewhere and only takes absolute ones.
 *
 * @module
 */

import { resolve } from "node:path";
import type { DomainInfo, RestoreRequest, SaveResult } from "../manager/api_types.ts";
import { domainPath, type DomainVerb, reportDomain, stringOption } from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";

const save: DomainVerb = {
  name: "save",
  summary: "Save a running domain's state and memory to a file, then stop it",
  help: `Usage: denovisor save NAME FILE [--keep] [--json]

Pauses the domain NAME, writes its devices and vCPUs to FILE and its memory to FILE.mem
(sparse: pages never used take no space) and its definition to FILE.domain.json, then
destroys it, as 'xl save' does. 'denovisor restore FILE' brings it back where it was.
FILE must not exist; nothing that looks complete is left if the save fails.

Options:
  --keep   Leave the domain running afterwards (a checkpoint)
  --json   Print what was written as JSON

Example:
  denovisor save web /var/lib/denovisor/saves/web.state`,
  options: { keep: { type: "boolean" } },
  json: true,
  args: ["domain", "state"],
  completes: ["running", "paused"],
  async run(context, values, [name, file]) {
    const result = await context.client.post<SaveResult>(domainPath(name, "/save"), {
      file: resolve(file),
      keep: values.keep === true,
    });
    if (values.json) {
      context.io.out(formatJson(result));
      return CLIENT_EXIT.OK;
    }
    const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
    context.io.out(
      `Domain '${printable(name)}' saved to ${printable(result.stateFile)} ` +
        `(${mib(result.memoryDataBytes)} MiB of memory in ${printable(result.memoryFile)}, ` +
        `paused ${result.pausedMs} ms)${result.kept ? "; it keeps running" : ""}`,
    );
    return CLIENT_EXIT.OK;
  },
};

const restore: DomainVerb = {
  name: "restore",
  summary: "Start a domain from a file written by save",
  help: `Usage: denovisor restore FILE [--paused] [--name NEW] [--force] [--json]

Starts a new VMM from the state in FILE (written by 'denovisor save'): the guest goes on
from where it was saved. The domain is defined again from FILE.domain.json if it is not.

Options:
  --paused     Leave the restored domain paused ('denovisor resume' runs it)
  --name NEW   Restore as a new domain NEW, with a new uuid and new MAC addresses
  --force      Restore although a disk changed since the save (size or file)
  --json       Print the domain's info as JSON

Example:
  denovisor restore /var/lib/denovisor/saves/web.state --paused`,
  options: {
    paused: { type: "boolean" },
    name: { type: "string" },
    force: { type: "boolean" },
  },
  json: true,
  args: ["state"],
  async run(context, values, [file]) {
    const body: RestoreRequest = { file: resolve(file) };
    if (values.paused) body.paused = true;
    if (values.force) body.force = true;
    const name = stringOption(values, "name");
    if (name !== undefined) body.name = name;
    const info = await context.client.post<DomainInfo>("/v1/restore", body);
    reportDomain(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' restored from ${printable(file)} (${info.state})`,
    );
    return CLIENT_EXIT.OK;
  },
};

/** save and restore. */
export const SAVE_VERBS: DomainVerb[] = [save, restore];
