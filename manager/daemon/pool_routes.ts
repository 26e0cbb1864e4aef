/**
 * The /v1/pools routes of manager/api_types.ts on top of a PoolManager: pools, their
 * lifecycle and their volumes. The storage layer's errors are coded (PoolError, and the
 * image, disk and GPT errors: a corrupt image is `invalid`, a disk locked by another
 * process `busy`), so they answer with their code's status; no message is read.
 *
 * @module
 */

import { dirname, isAbsolute } from "node:path";
import {
  ApiError,
  jsonResponse,
  parseRequest,
  readJsonBody,
  type Router,
} from "../../common/http/mod.ts";
import { EnabledRequest } from "../api_schema.ts";
import { DenovisorError } from "../../common/errors.ts";
import type { PoolManager } from "../../storage/pool/mod.ts";

/** The actions of POST /v1/pools/{name}/{action}. */
export const POOL_ACTIONS = ["build", "start", "stop", "refresh", "snapshot", "rollback"] as const;

/** Adds GET/POST/PUT/DELETE /v1/pools... to `router`. */
export function addPoolRoutes(router: Router, pools: PoolManager): Router {
  const guard = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      throw toApiError(error);
    }
  };
  const guardAsync = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw toApiError(error);
    }
  };

  router.add("GET", "/v1/pools", () => jsonResponse(guard(() => pools.list())));
  router.add("POST", "/v1/pools", async ({ request }) => {
    const body = await readJsonBody(request);
    return jsonResponse(guard(() => pools.define(body)), 201);
  });
  router.add(
    "GET",
    "/v1/pools/:pool",
    ({ params }) => jsonResponse(guard(() => pools.info(params.pool))),
  );
  router.add("DELETE", "/v1/pools/:pool", ({ params, url }) => {
    guard(() => pools.undefine(params.pool, { delete: flag(url, "delete") }));
    return new Response(null, { status: 204 });
  });
  router.add("PUT", "/v1/pools/:pool/autostart", async ({ params, request }) => {
    const body = parseRequest(EnabledRequest, await readJsonBody(request));
    return jsonResponse(guard(() => pools.setAutostart(params.pool, body.enabled)));
  });
  router.add(
    "GET",
    "/v1/pools/:pool/volumes",
    ({ params }) => jsonResponse(guard(() => pools.listVolumes(params.pool))),
  );
  router.add("POST", "/v1/pools/:pool/volumes", async ({ params, request }) => {
    const body = await readJsonBody(request);
    return jsonResponse(await guardAsync(() => pools.createVolume(params.pool, body)), 201);
  });
  router.add(
    "GET",
    "/v1/pools/:pool/volumes/:vol",
    ({ params }) => jsonResponse(guard(() => pools.volumeInfo(params.pool, params.vol))),
  );
  router.add("DELETE", "/v1/pools/:pool/volumes/:vol", async ({ params }) => {
    await guardAsync(() => pools.deleteVolume(params.pool, params.vol));
    return new Response(null, { status: 204 });
  });
  router.add(
    "GET",
    "/v1/pools/:pool/volumes/:vol/progress",
    ({ params }) => jsonResponse(pools.volumeProgress(params.pool, params.vol)),
  );
  router.add("POST", "/v1/pools/:pool/volumes/:vol/:action", async ({ params, request }) => {
    const body = await readJsonBody(request);
    if (params.action === "export") exportTargetDirectory(body);
    const info = await guardAsync(() =>
      pools.volumeAction(params.pool, params.vol, params.action, body)
    );
    return jsonResponse(info, params.action === "clone" ? 201 : 200);
  });
  // Last: the router takes the first match, and :action would match "volumes".
  router.add("POST", "/v1/pools/:pool/:action", async ({ params, url, request }) => {
    const body = await readJsonBody(request);
    const pool = params.pool;
    switch (params.action as typeof POOL_ACTIONS[number]) {
      case "build":
        return jsonResponse(guard(() => pools.build(pool, { overwrite: flag(url, "overwrite") })));
      case "start":
        return jsonResponse(guard(() => pools.start(pool)));
      case "stop":
        return jsonResponse(guard(() => pools.stop(pool)));
      case "refresh":
        return jsonResponse(guard(() => pools.refresh(pool)));
      case "snapshot":
        return jsonResponse(await guardAsync(() => pools.snapshotPool(pool, body)));
      case "rollback":
        return jsonResponse(await guardAsync(() => pools.rollbackPool(pool, body)));
    }
    throw new ApiError(
      "invalid",
      `Unknown pool action '${params.action}'; use ${POOL_ACTIONS.join(", ")}`,
    );
  });

  return router;
}

/** An export's target must be a new file in an existing directory: 400 otherwise, not 500. */
function exportTargetDirectory(body: unknown): void {
  const target = (body as { target?: unknown } | null)?.target;
  if (typeof target !== "string" || !isAbsolute(target)) return; // The pool layer says why.
  const directory = dirname(target);
  let isDirectory = false;
  try {
    isDirectory = Deno.statSync(directory).isDirectory;
  } catch {
    // Missing or unreachable: said below.
  }
  if (!isDirectory) {
    throw new ApiError(
      "invalid",
      `target: ${directory} is not an existing directory; create it first or pick another path`,
    );
  }
}

function flag(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  return value !== null && value !== "0" && value !== "false";
}

/**
 * The API error for a failure of the pool layer: a coded error as it is (the router
 * answers with its code's status), a missing file `not_found`, anything else unchanged
 * (a 500).
 */
export function toApiError(error: unknown): unknown {
  if (error instanceof DenovisorError) return error;
  if (error instanceof Deno.errors.NotFound) {
    return new ApiError("not_found", (error as Error).message, { cause: error });
  }
  return error;
}
