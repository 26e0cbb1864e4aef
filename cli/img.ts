/**
 * `denovisor img`: disk images outside pools, with qemu-img's subcommands, options,
 * output and exit statuses, so scripts can switch over.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";
import { IMG_CHANGE_COMMANDS } from "./img_change.ts";
import { IMG_INSPECT_COMMANDS } from "./img_inspect.ts";
import { IMG_SNAPSHOT_COMMANDS } from "./img_snapshot.ts";

/** One `img` subcommand: its usage text and what it does. */
export interface ImgSubcommand {
  usage: string;
  summary: string;
  run(args: string[]): number;
}

const SUBCOMMANDS: Record<string, ImgSubcommand> = {
  ...IMG_CHANGE_COMMANDS,
  ...IMG_INSPECT_COMMANDS,
  ...IMG_SNAPSHOT_COMMANDS,
};

const ORDER = [
  "create",
  "info",
  "check",
  "convert",
  "resize",
  "commit",
  "rebase",
  "compare",
  "map",
  "measure",
  "dd",
  "snapshot",
];

/** The `img` subcommands in help order (the REPL completes them). */
export function imgSubcommandNames(): string[] {
  return [...ORDER, ...Object.keys(SUBCOMMANDS).filter((n) => !ORDER.includes(n))]
    .filter((name) => SUBCOMMANDS[name] !== undefined);
}

/** The `img` verb's help. */
export function imgHelp(): string {
  const names = imgSubcommandNames();
  return `Usage: denovisor img <subcommand> [options]

Disk images (raw and qcow2) on plain paths, the way qemu-img handles them.

Subcommands:
${names.map((name) => `  ${name.padEnd(10)} ${SUBCOMMANDS[name].summary}`).join("\n")}

Common options: -f FMT (image format, probed when omitted), -q (quiet).
Formats: raw, qcow2. Sizes take k, M, G, T, P, E suffixes (10G, 512M).
Run 'denovisor img <subcommand> --help' for a subcommand's options.`;
}

/** Runs `denovisor img ...args`; returns the exit status. */
export function imgCommand(args: string[]): number {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    if (name === "help" && rest[0] && SUBCOMMANDS[rest[0]]) {
      console.log(SUBCOMMANDS[rest[0]].usage);
      return 0;
    }
    console.log(imgHelp());
    return name === undefined ? 2 : 0;
  }
  const subcommand = SUBCOMMANDS[name];
  if (subcommand === undefined) {
    throw new UsageError(`img: unknown subcommand '${name}'; run 'denovisor img --help'`);
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(subcommand.usage);
    return 0;
  }
  return subcommand.run(rest);
}
