/**
 * How the CLI's entry points end on an error: one line on stderr, the stack too with
 * DENOVISOR_DEBUG set, and the exit status.
 *
 * @module
 */

import { EXIT_STATUS } from "../core/vm_end.ts";
import { UsageError } from "./usage_error.ts";

/** Prints `error` as "denovisor: message"; returns 2 for a usage error, else 1. */
export function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`denovisor: ${error.message}`);
    return EXIT_STATUS.USAGE;
  }
  console.error(`denovisor: ${error instanceof Error ? error.message : String(error)}`);
  if (Deno.env.get("DENOVISOR_DEBUG") && error instanceof Error) console.error(error.stack);
  return EXIT_STATUS.ERROR;
}
