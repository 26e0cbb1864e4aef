/**
 * The `denovisor` command line: one executable, one verb per file in cli/.
 *
 * @module
 */

import { checkCommand } from "./check.ts";
import { domainCommands, domainHelpLines } from "./domain_commands.ts";
import { EXIT_STATUS_HELP } from "./output.ts";
import { POOL_ALIASES, poolAliasCommand, poolCommand } from "./pool.ts";
import { VOL_ALIASES, volAliasCommand, volCommand } from "./vol.ts";
import { daemonCommand } from "./daemon.ts";
import { replCommand } from "./repl/repl.ts";
import { runCommand } from "./run.ts";
import { UsageError } from "./usage_error.ts";
import { versionCommand } from "./version.ts";
import { vmmCommand } from "./vmm.ts";
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
  repl       Interactive shell: every client command, Tab completion, live events
  install    Install the systemd unit denovisor.service and its directories
  run        Boot a VM in the foreground (no options: the embedded demo guest)
  check      Check that this host can run VMs
  version    Print the version
  help       Show this help, or a command's help: denovisor help run

Every command takes --help. Client commands take --socket PATH and --state-dir DIR
(default: $DENOVISOR_SOCKET, $DENOVISOR_STATE_DIR, then /run/denovisor/api.sock and
/var/lib/denovisor).

${EXIT_STATUS_HELP}`;

type Command = (args: string[]) => Promise<number> | number;

const COMMANDS: Record<string, Command> = {
  ...domainCommands(),
  repl: replCommand,
  run: runCommand,
  check: checkCommand,
  pool: poolCommand,
  vol: volCommand,
  ...Object.fromEntries(POOL_ALIASES.map((verb) => [verb, poolAliasCommand(verb)])),
  ...Object.fromEntries(VOL_ALIASES.map((verb) => [verb, volAliasCommand(verb)])),
  daemon: daemonCommand,
  version: versionCommand,
  vmm: vmmCommand,
  img: async (args) => (await import("./img.ts")).imgCommand(args),
  install: async (args) => (await import("./install.ts")).installCommand(args),
};

/** Runs the CLI with `args`; returns the process exit status. */
export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  try {
    if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
      if (rest[0] && COMMANDS[rest[0]]) return await COMMANDS[rest[0]](["--help"]);
      console.log(MAIN_HELP);
      return verb === undefined ? EXIT_STATUS.USAGE : EXIT_STATUS.OK;
    }
    if (verb === "--version") return versionCommand([]);
    const command = COMMANDS[verb];
    if (command === undefined) {
      throw new UsageError(`Unknown command '${verb}'; run 'denovisor help' for the list`);
    }
    return await command(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`denovisor: ${error.message}`);
      return EXIT_STATUS.USAGE;
    }
    console.error(`denovisor: ${error instanceof Error ? error.message : String(error)}`);
    if (Deno.env.get("DENOVISOR_DEBUG") && error instanceof Error) console.error(error.stack);
    return EXIT_STATUS.ERROR;
  }
}
