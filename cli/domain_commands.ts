/**
 * The table of domain verbs, their aliases, and their lines in `denovisor help`; main.ts
 * and the REPL both take them from here.
 *
 * @module
 */

import { CONSOLE_VERBS } from "./domain_console.ts";
import { DEFINE_VERBS } from "./domain_define.ts";
import { EDIT_VERBS } from "./domain_edit.ts";
import { LIFECYCLE_VERBS } from "./domain_lifecycle.ts";
import { LIST_VERBS } from "./domain_list.ts";
import { STATS_VERBS } from "./domain_stats.ts";
import { TUNE_VERBS } from "./domain_tune.ts";
import { type DomainVerb, runVerbCli } from "./domain_verb.ts";
import { SAVE_VERBS } from "./domain_save.ts";
import { runSnapshotGroup, SNAPSHOT_VERBS } from "./snapshot.ts";
import { CLONE_VERBS } from "./clone.ts";
import { EVENT_VERBS } from "./events.ts";
import { MIGRATE_VERBS } from "./domain_migrate.ts";

/** Every domain verb, in the order `denovisor help` lists them. */
export const DOMAIN_VERBS: DomainVerb[] = [
  LIST_VERBS[0], // list
  LIST_VERBS[1], // info
  ...DEFINE_VERBS,
  ...EDIT_VERBS,
  ...LIFECYCLE_VERBS,
  ...CONSOLE_VERBS,
  ...STATS_VERBS,
  ...TUNE_VERBS,
  ...SAVE_VERBS,
  ...SNAPSHOT_VERBS,
  ...CLONE_VERBS,
  ...MIGRATE_VERBS,
  ...EVENT_VERBS,
];

/** A verb by name or alias. */
export function findDomainVerb(name: string): DomainVerb | undefined {
  return DOMAIN_VERBS.find((verb) => verb.name === name || verb.aliases?.includes(name));
}

/** `denovisor <verb>` entries for main.ts's COMMANDS table, aliases included. */
export function domainCommands(): Record<string, (args: string[]) => Promise<number>> {
  const commands: Record<string, (args: string[]) => Promise<number>> = {};
  for (const verb of DOMAIN_VERBS) {
    for (const name of [verb.name, ...verb.aliases ?? []]) {
      commands[name] = (args) => runVerbCli(verb, args);
    }
  }
  // `snapshot create ...`: the same verbs under one word.
  commands.snapshot = (args) => runSnapshotGroup(args, runVerbCli, console.log);
  return commands;
}

/** The "Domains" section of `denovisor help`. */
export function domainHelpLines(): string {
  return [
    ...DOMAIN_VERBS.map((verb) => {
      const names = [verb.name, ...verb.aliases ?? []].join(", ");
      return `  ${names.padEnd(21)} ${verb.summary}`;
    }),
    `  ${"snapshot".padEnd(21)} create, list, info, revert, delete: the snapshot-* verbs`,
  ].join("\n");
}
