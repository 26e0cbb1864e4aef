/**
 * Errors in how a command was called (exit status 2), and argument parsing that turns
 * node:util's messages into ones that say what to do.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A command called wrongly: unknown flag, missing or malformed value. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` strictly (unknown flags are errors) for `command`. */
export function parseCommandArgs<T extends Options>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${command}: ${message.replace(/\. To specify.*$/s, "")}; see --help`);
  }
}
