/**
 * The `denovisor` command line: one executable, one verb per file in cli/.
 *
 * Verbs other than the small domain clients are imported when called: a `denovisor vmm`
 * process (one per running domain) then holds the hypervisor's code and not the daemon's,
 * the REPL's or the image tools', and every client starts faster.
 *
 * @module
 */

import { domainCommands, domainHelpLines } from "./domain_commands.ts";
import { EXIT_STATUS_HELP } from "./output.ts";
import { didYouMean } from "./suggest.ts";
import { UsageError } from "./usage_error.ts";
import { reportError } from "./report_error.ts";
import { versionCommand } from "./version.ts";
import { EXIT_STATUS } from "../core/vm_end.ts";

export const MAIN_HELP = `Usage: denovisor <command> [options]

Domains:
${domainHelpLines()}

Storage:
  pool       Storage pools: define, build, start, list... (virsh pool-* names work)
  vol        Volumes: create, clone, snapshot, rollback... (virsh vol-* names work)
  img        Disk images on plain paths, like qemu-img: create, info, convert, commit...

Host:
  daemon     Run the service: the API socket and one VMM per running domain
  farm       The farm of hosts this daemon belongs to: status, events
  host       The farm's hosts: list, info, maintenance, evacuate, remove
  migration-certs  A CA and host certificates for a test farm's live migration
  repl       Interactive shell: every client command, Tab completion, live events
  install    Install the systemd unit denovisor.service and its directories
  completion Print a completion script for bash, zsh or fish
  run        Boot a VM in the foreground (no options: the embedded demo guest)
  check      Check that this host can run VMs
  version    Print the version
  help       Show this help, or a command's help: denovisor help run

Every command takes --help. Client commands take --socket PATH and --state-dir DIR
(default: $DENOVISOR_SOCKET, $DENOVISOR_STATE_DIR, then /run/denovisor/api.sock and
/var/lib/denovisor).

${EXIT_STATUS_HELP}`;

type Command = (args: string[]) => Promise<number> | number;

/** A command whose module is imported on first use. */
const lazy = (load: () => Promise<Command>): Command => async (args) => await (await load())(args);

const COMMANDS: Record<string, Command> = {
  ...domainCommands(),
  repl: lazy(async () => (await import("./repl/repl.ts")).replCommand),
  run: lazy(async () => (await import("./run.ts")).runCommand),
  check: lazy(async () => (await import("./check.ts")).checkCommand),
  pool: lazy(async () => (await import("./pool.ts")).poolCommand),
  vol: lazy(async () => (await import("./vol.ts")).volCommand),
  daemon: lazy(async () => (await import("./daemon.ts")).daemonCommand),
  farm: lazy(async () => (await import("./farm.ts")).farmCommand),
  host: lazy(async () => (await import("./host.ts")).hostCommand),
  "migration-certs": lazy(async () => (await import("./migration_certs.ts")).migrationCertsCommand),
  version: versionCommand,
  vmm: lazy(async () => (await import("./vmm.ts")).vmmCommand),
  img: lazy(async () => (await import("./img.ts")).imgCommand),
  install: lazy(async () => (await import("./install.ts")).installCommand),
  completion: lazy(async () => (await import("./completion_command.ts")).completionCommand),
  // Hidden: what the completion scripts call.
  __complete: lazy(async () => (await import("./completion_command.ts")).completeCommand),
};

/** Every verb a user may type, for "did you mean ...?". */
async function knownVerbs(): Promise<string[]> {
  const [pool, vol] = await Promise.all([import("./pool.ts"), import("./vol.ts")]);
  return [
    ...Object.keys(COMMANDS).filter((verb) => !verb.startsWith("__")),
    ...pool.POOL_ALIASES,
    ...vol.VOL_ALIASES,
    "help",
  ];
}

/** The command for `verb`, virsh's pool-* and vol-* names included; undefined if none. */
async function findCommand(verb: string): Promise<Command | undefined> {
  if (Object.hasOwn(COMMANDS, verb)) return COMMANDS[verb];
  if (verb.startsWith("pool-")) {
    const pool = await import("./pool.ts");
    if (pool.POOL_ALIASES.includes(verb)) return pool.poolAliasCommand(verb);
  }
  if (verb.startsWith("vol-")) {
    const vol = await import("./vol.ts");
    if (vol.VOL_ALIASES.includes(verb)) return vol.volAliasCommand(verb);
  }
  return undefined;
}

/** Runs the CLI with `args`; returns the process exit status. */
export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  try {
    if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
      const helped = rest[0] === undefined ? undefined : await findCommand(rest[0]);
      if (helped) return await helped(["--help"]);
      if (rest[0] !== undefined) {
        throw new UsageError(
          `help: no command '${rest[0]}'${didYouMean(rest[0], await knownVerbs())}` +
            `; run 'denovisor help' for the list`,
        );
      }
      console.log(MAIN_HELP);
      return verb === undefined ? EXIT_STATUS.USAGE : EXIT_STATUS.OK;
    }
    if (verb === "--version") return versionCommand([]);
    const command = await findCommand(verb);
    if (command === undefined) {
      throw new UsageError(
        `Unknown command '${verb}'${didYouMean(verb, await knownVerbs())}` +
          `; run 'denovisor help' for the list`,
      );
    }
    return await command(rest);
  } catch (error) {
    return reportError(error);
  }
}
