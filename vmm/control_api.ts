/**
 * The VMM's control API (HTTP+JSON on `<runDir>/vmm.sock`), routes as listed in
 * vmm/vmm_config.ts; errors are the daemon API's `ApiErrorBody`.
 *
 * @module
 */

import { jsonResponse, readJsonBody, Router } from "../common/http/mod.ts";
import { ApiError } from "../common/http/mod.ts";
import { resolveSaveTarget } from "./snapshot/save_machine.ts";
import { parseMigrateSendRequest } from "./migration/vmm_endpoint.ts";
import type { VmmDomain } from "./vmm_domain.ts";
import type { VmmSaveRequest, VmmStatus } from "./vmm_config.ts";

/** What the API needs besides the domain: how destroy waits for the end. */
export interface ControlHooks {
  /** Destroys the VM and resolves with the final status once end.json is written. */
  destroy(source: string): Promise<VmmStatus>;
}

/** The router serving one domain. */
export function controlRouter(domain: VmmDomain, hooks: ControlHooks): Router {
  return new Router()
    .add("GET", "/vm", () => jsonResponse(domain.status()))
    .add("POST", "/vm/pause", async () => jsonResponse(await domain.pause()))
    .add("POST", "/vm/resume", async () => jsonResponse(await domain.resume()))
    .add("POST", "/vm/shutdown", async () => jsonResponse(await domain.shutdown()))
    .add("POST", "/vm/reboot", async () => jsonResponse(await domain.reboot()))
    .add("POST", "/vm/ctrl-alt-del", async () => jsonResponse(await domain.requestReboot()))
    .add("POST", "/vm/destroy", async () => jsonResponse(await hooks.destroy("destroy request")))
    .add("GET", "/vm/stats", () => jsonResponse(domain.stats()))
    .add("POST", "/vm/migrate-send", async ({ request }) => {
      const body = parseMigrateSendRequest(await readJsonBody(request));
      return jsonResponse(await domain.migrateSend(body));
    })
    .add("POST", "/vm/migrate-abort", () => jsonResponse({ aborted: domain.abortMigration() }))
    .add("POST", "/vm/save", async ({ request }) => {
      const body = parseSaveRequest(await readJsonBody(request));
      return jsonResponse(await domain.save(body));
    })
    .add("PUT", "/vm/balloon", async ({ request }) => {
      const body = await readJsonBody(request);
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new ApiError("invalid", 'The body must be an object: { "targetBytes": N }');
      }
      const unknown = Object.keys(body).filter((key) => key !== "targetBytes");
      if (unknown.length > 0) {
        throw new ApiError(
          "invalid",
          `${unknown[0]}: unknown field; the body is { "targetBytes": N }`,
        );
      }
      return jsonResponse(await domain.setBalloon((body as { targetBytes?: unknown }).targetBytes));
    });
}

const SAVE_FIELDS = ["stateFile", "memoryFile", "inline", "resume"];
const SAVE_SHAPE =
  '{ "stateFile": ABS_PATH, "memoryFile"?: ABS_PATH, "inline"?: boolean, "resume"?: boolean }';

/**
 * Checks POST /vm/save's body (untrusted): known fields of the right types, absolute
 * paths, the memory file beside the state file, no memory file for an inline save.
 */
export function parseSaveRequest(body: unknown): VmmSaveRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError("invalid", `The body must be an object: ${SAVE_SHAPE}`);
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !SAVE_FIELDS.includes(key));
  if (unknown !== undefined) {
    throw new ApiError("invalid", `${unknown}: unknown field; the body is ${SAVE_SHAPE}`);
  }
  const { stateFile, memoryFile, inline, resume } = fields;
  if (typeof stateFile !== "string" || stateFile === "") {
    throw new ApiError("invalid", "stateFile: must be the absolute path of the state file");
  }
  if (memoryFile !== undefined && typeof memoryFile !== "string") {
    throw new ApiError("invalid", "memoryFile: must be an absolute path");
  }
  for (const [name, value] of [["inline", inline], ["resume", resume]] as const) {
    if (value !== undefined && typeof value !== "boolean") {
      throw new ApiError("invalid", `${name}: must be true or false`);
    }
  }
  const request: VmmSaveRequest = {
    stateFile,
    ...(memoryFile === undefined ? {} : { memoryFile: memoryFile as string }),
    ...(inline === undefined ? {} : { inline: inline as boolean }),
    ...(resume === undefined ? {} : { resume: resume as boolean }),
  };
  resolveSaveTarget(request); // paths: absolute, the memory file beside the state file
  return request;
}

/**
 * Serves `router` on the unix socket `path` (mode 0600); resolves once it listens.
 * A stale socket file must be removed by the caller first.
 */
export async function serveControl(path: string, router: Router): Promise<Deno.HttpServer> {
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => listening = resolve);
  const server = Deno.serve(
    {
      path,
      onListen: () => listening(),
      onError: (error) => new Response(String(error), { status: 500 }),
    },
    (request) => router.handle(request),
  );
  await ready;
  Deno.chmodSync(path, 0o600);
  return server;
}
