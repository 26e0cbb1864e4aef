/**
 * Errors in how a command was called (exit status 2), and argument parsing that turns
 * node:util's messages into ones that say what to do.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { DenovisorError } from "../common/errors.ts";
import { didYouMean } from "./suggest.ts";
import { parseSize, SizeError } from "../common/units.ts";

/** A command called wrongly: unknown flag, missing or malformed value (code `usage`). */
export class UsageError extends DenovisorError {
  constructor(message: string) {
    super("usage", message);
  }
}

/**
 * `parseSize` for a command-line argument: a size that cannot be read is a usage error
 * (exit status 2), named by `what` (the flag or argument).
 */
export function parseSizeArgument(text: string, what: string, bareUnit?: string): number {
  try {
    return parseSize(text, what, bareUnit);
  } catch (error) {
    if (error instanceof SizeError) throw new UsageError(error.message);
    throw error;
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
    const unknown = /^Unknown option '(--?[^']+)'/.exec(message)?.[1];
    const hint = unknown === undefined
      ? ""
      : didYouMean(unknown, Object.keys(options).map((name) => `--${name}`));
    throw new UsageError(
      `${command}: ${message.replace(/\. To specify.*$/s, "")}${hint}; see --help`,
    );
  }
}
