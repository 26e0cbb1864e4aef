/**
 * The entry of a `denovisor vmm` process (main.ts sends `vmm` here before anything else
 * loads). One VMM runs per domain, so it must not hold what only the CLI's client verbs
 * use: cli/main.ts's static graph (the domain commands, the API client, domain definition
 * parsing: 38 modules) is never loaded. Errors are reported as cli/main.ts reports them.
 *
 * @module
 */

import { EXIT_STATUS } from "../core/vm_end.ts";
import { UsageError } from "./usage_error.ts";
import { vmmCommand } from "./vmm.ts";

/** Runs `denovisor vmm ARGS` (`args` without the verb); returns the process exit status. */
export async function vmmMain(args: string[]): Promise<number> {
  try {
    return await vmmCommand(args);
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
