/**
 * Denovisor's version, from deno.json: what `denovisor version` prints, the daemon's
 * host info and OpenAPI description report, and a VMM can be asked for.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** Denovisor's version, from deno.json. */
export const VERSION: string = denoJson.version;
