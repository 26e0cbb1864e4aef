/**
 * The entry of a `denovisor vmm` process (main.ts sends `vmm` here before anything else
 * loads). One VMM runs per domain, so it must not hold what only the CLI's client verbs
 * use: cli/main.ts's static graph (the domain commands, the API client, domain definition
 * parsing: 38 modules) is never loaded. Errors are reported as cli/main.ts reports them
 * (cli/report_error.ts).
 *
 * @module
 */

import { reportError } from "./report_error.ts";
import { vmmCommand } from "./vmm.ts";

/** Runs `denovisor vmm ARGS` (`args` without the verb); returns the process exit status. */
export async function vmmMain(args: string[]): Promise<number> {
  try {
    return await vmmCommand(args);
  } catch (error) {
    return reportError(error);
  }
}
