/**
 * `denovisor version`.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** Denovisor's version, from deno.json. */
export const VERSION: string = denoJson.version;

export function versionCommand(): number {
  console.log(`denovisor ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})`);
  return 0;
}
