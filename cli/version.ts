/**
 * `denovisor version`.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { parseCommandArgs } from "./usage_error.ts";

/** Denovisor's version, from deno.json. */
export const VERSION: string = denoJson.version;

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
