/**
 * What the REPL can run and complete: the domain verbs (the very code behind
 * `denovisor <verb>`, given the REPL's open client), the `pool` and `vol` groups and
 * their virsh-style aliases, and the REPL's own words (help, history, exit).
 *
 * @module
 */

import { DOMAIN_VERBS, domainHelpLines, findDomainVerb } from "../domain_commands.ts";
import { type ArgKind, runVerbWith, type VerbContext, verbOptions } from "../domain_verb.ts";
import { CLIENT_EXIT, EXIT_STATUS_HELP, reportError } from "../output.ts";
import {
  runSnapshotGroup,
  SNAPSHOT_HELP,
  SNAPSHOT_SUBCOMMANDS,
  snapshotSubcommand,
} from "../snapshot.ts";
import { POOL_ALIASES, POOL_SUBCOMMANDS, poolCommand } from "../pool.ts";
import { FARM_SUBCOMMANDS, farmCommand } from "../farm.ts";
import { HOST_SUBCOMMANDS, hostCommand } from "../host.ts";
import { findSubcommand, runSubcommandWith, type Subcommand } from "../pool_output.ts";
import { VOL_ALIASES, VOL_SUBCOMMANDS, volCommand } from "../vol.ts";
import type { ArgCompletion, CompletionSpec } from "./completion.ts";
import { imgCommand, imgSubcommandNames } from "../img.ts";
import { checkCommand } from "../check.ts";

/** The REPL's own commands. */
export const BUILTINS = ["help", "history", "exit", "quit"];

/** The REPL's `help`. */
export const REPL_HELP = `Commands (Tab completes commands, options and names):

Domains:
${domainHelpLines()}

Storage:
  pool SUBCOMMAND ...   Storage pools ('help pool'); pool-list etc. work too
  vol SUBCOMMAND ...    Volumes ('help vol'); vol-list etc. work too

Farm:
  farm SUBCOMMAND ...   The farm of hosts ('help farm'): status, events
  host SUBCOMMAND ...   Its hosts ('help host'): list, info, maintenance, evacuate, remove

Host:
  img SUBCOMMAND ...    Disk images on plain paths, like qemu-img ('help img')
  check                 Check that this host can run VMs

Shell:
  help [COMMAND]        This list, or a command's help (also: COMMAND --help)
  history               The commands typed so far
  exit, quit            Leave (or Ctrl-D)

Lines starting with '*' are live domain events from the daemon. Ctrl-C stops a command
that waits (logs --follow, shutdown); Ctrl-] leaves a console. Ctrl-R searches the
history (again for older matches, Ctrl-G gives up); Alt-B and Alt-F move by words.

${EXIT_STATUS_HELP}`;

const ARG_COMPLETIONS: Record<ArgKind, ArgCompletion> = {
  domain: "domain",
  file: "file",
  size: "none",
  count: "none",
  onoff: "onoff",
  seconds: "none",
  verb: "command",
  name: "none",
  snapshot: "snapshot",
  state: "file",
  host: "host",
};

function optionKind(name: string, type: string): ArgCompletion | "flag" {
  if (type === "boolean") return "flag";
  if (name === "pool") return "pool";
  if (name === "domain") return "domain";
  if (name === "host") return "host";
  if (["file", "state-dir", "socket", "history"].includes(name)) return "file";
  return "none";
}

function optionsOf(options: Record<string, { type: string }>): CompletionSpec["options"] {
  return Object.fromEntries(
    Object.entries(options).map(([name, option]) => [`--${name}`, optionKind(name, option.type)]),
  );
}

/** Positional kinds from a usage line such as "VOL NEWNAME [--pool POOL]". */
function usageArgs(usage: string): ArgCompletion[] {
  const words = usage.split("|")[0].replace(/[[\]]/g, " ").split(/\s+/).filter(Boolean);
  const optionAt = words.findIndex((word) => word.startsWith("-"));
  const positional = optionAt < 0 ? words : words.slice(0, optionAt);
  return positional.map((word) => {
    if (word === "POOL") return "pool";
    if (word === "VOL") return "volume";
    if (word === "HOST") return "host";
    if (/^FILE/.test(word)) return "file";
    return "none";
  });
}

function subcommandSpec(sub: Subcommand): CompletionSpec {
  return {
    names: [sub.name, ...sub.aliases ?? []],
    options: optionsOf({
      ...sub.options,
      json: { type: "boolean" },
      help: { type: "boolean" },
    } as Record<string, { type: string }>),
    args: usageArgs(sub.usage),
  };
}

/** Everything Tab completes at the start of a line and after it. */
export function completionSpecs(): CompletionSpec[] {
  const domain = DOMAIN_VERBS.map((verb): CompletionSpec => ({
    names: [verb.name, ...verb.aliases ?? []],
    options: optionsOf(verbOptions(verb) as Record<string, { type: string }>),
    args: verb.args.map((kind) => ARG_COMPLETIONS[kind]),
    domainStates: verb.completes,
  }));
  const group = (name: string, subs: Subcommand[]): CompletionSpec => ({
    names: [name],
    options: {},
    args: [],
    subcommands: subs.map(subcommandSpec),
  });
  const snapshots: CompletionSpec = {
    names: ["snapshot"],
    options: {},
    args: [],
    subcommands: SNAPSHOT_SUBCOMMANDS.map((word) => {
      const verb = snapshotSubcommand(word);
      return { ...domain.find((spec) => spec.names[0] === verb.name)!, names: [word] };
    }),
  };
  return [
    ...domain,
    snapshots,
    group("pool", POOL_SUBCOMMANDS),
    group("vol", VOL_SUBCOMMANDS),
    group("farm", FARM_SUBCOMMANDS),
    group("host", HOST_SUBCOMMANDS),
    {
      names: ["img"],
      options: {},
      args: [],
      subcommands: imgSubcommandNames().map((name) => ({ names: [name], options: {}, args: [] })),
    },
    { names: ["check"], options: { "--json": "flag", "--help": "flag" }, args: [] },
    { names: ["help"], options: {}, args: ["command"] },
    { names: ["history", "exit", "quit"], options: {}, args: [] },
  ];
}

/**
 * Runs one REPL command (not a builtin) with the REPL's client; returns its exit status,
 * or undefined when there is no such command.
 */
export async function runReplCommand(
  words: string[],
  context: VerbContext,
): Promise<number | undefined> {
  const [name, ...args] = words;
  const verb = findDomainVerb(name);
  if (verb) return await runVerbWith(verb, args, context);
  if (name === "snapshot") {
    try {
      return await runSnapshotGroup(
        args,
        (sub, rest) => runVerbWith(sub, rest, context),
        context.io.out,
      );
    } catch (error) {
      return reportError(context.io, "error", error);
    }
  }
  // The commands that need no daemon: the same code as `denovisor img` and `check`.
  if (name === "img" || name === "check") {
    try {
      return name === "img" ? imgCommand(args) : await checkCommand(args);
    } catch (error) {
      return reportError(context.io, "error", error);
    }
  }
  const io = { client: context.client, io: context.io };
  for (
    const [group, subs, aliases, help] of [
      ["pool", POOL_SUBCOMMANDS, POOL_ALIASES, poolCommand],
      ["vol", VOL_SUBCOMMANDS, VOL_ALIASES, volCommand],
      ["farm", FARM_SUBCOMMANDS, [] as string[], farmCommand],
      ["host", HOST_SUBCOMMANDS, [] as string[], hostCommand],
    ] as const
  ) {
    if (name === group) {
      if (args.length === 0 || ["help", "--help", "-h"].includes(args[0])) {
        await help(["--help"]);
        return args.length === 0 ? CLIENT_EXIT.USAGE : CLIENT_EXIT.OK;
      }
      return await runSubcommandWith(group, subs, args, io);
    }
    if (aliases.includes(name) && findSubcommand(subs, name)) {
      return await runSubcommandWith(group, subs, words, io);
    }
  }
  return undefined;
}

/** `help NAME` in the REPL: the command's --help; false if there is no such command. */
export async function showHelp(name: string, context: VerbContext): Promise<boolean> {
  const verb = findDomainVerb(name);
  if (verb) {
    context.io.out(verb.help);
    return true;
  }
  if (name === "snapshot") {
    context.io.out(SNAPSHOT_HELP);
    return true;
  }
  if (name === "img" || name === "check") {
    await runReplCommand([name, "--help"], context);
    return true;
  }
  if (name === "pool" || name === "vol" || name === "farm" || name === "host") {
    await ({ pool: poolCommand, vol: volCommand, farm: farmCommand, host: hostCommand })[name]([
      "--help",
    ]);
    return true;
  }
  return await runReplCommand([name, "--help"], context) !== undefined;
}
