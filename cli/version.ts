/**
 * `denovisor version`.
 *
 * @module
 */

import { VERSION } from "../common/version.ts";
import { parseCommandArgs } from "./usage_error.ts";

export const VERSION_HELP = `Usage: denovisor version [--json]

Prints Denovisor's version and the Deno and V8 versions it runs on.`;

export function versionCommand(args: string[] = []): number {
  const { values } = parseCommandArgs("version", args, {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(VERSION_HELP);
  } else if (values.json) {
    console.log(
      JSON.stringify({ denovisor: VERSION, deno: Deno.version.deno, v8: Deno.version.v8 }),
    );
  } else {
    console.log(`denovisor ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})`);
  }
  return 0;
}
