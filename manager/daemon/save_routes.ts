/**
 * The API routes of save, restore, domain snapshots and clones (manager/api_types.ts).
 * They are added before the generic `POST /v1/domains/{name}/{action}` route, which
 * would otherwise take `save`, `clone` and `snapshots` for unknown actions.
 *
 * @module
 */

import { jsonResponse, readJsonBody, type Router } from "../../common/http/mod.ts";
import { type CloneContext, cloneDomain } from "./clone_ops.ts";
import { restoreDomain, saveDomain } from "./save_restore.ts";
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertSnapshot,
  snapshotInfo,
} from "./snapshot_ops.ts";

/** Adds the save, restore, snapshot and clone routes to `router`. */
export function addSaveRoutes(router: Router, ctx: CloneContext): void {
  router.add("POST", "/v1/domains/:name/save", async ({ request, params }) => {
    return jsonResponse(await saveDomain(ctx.domains, params.name, await readJsonBody(request)));
  });
  router.add("POST", "/v1/restore", async ({ request }) => {
    return jsonResponse(await restoreDomain(ctx.domains, await readJsonBody(request)));
  });
  router.add("GET", "/v1/domains/:name/snapshots", async ({ params }) => {
    return jsonResponse(await listSnapshots(ctx, params.name));
  });
  router.add("POST", "/v1/domains/:name/snapshots", async ({ request, params }) => {
    return jsonResponse(await createSnapshot(ctx, params.name, await readJsonBody(request)), 201);
  });
  router.add("GET", "/v1/domains/:name/snapshots/:snapshot", async ({ params }) => {
    return jsonResponse(await snapshotInfo(ctx, params.name, params.snapshot));
  });
  router.add("DELETE", "/v1/domains/:name/snapshots/:snapshot", async ({ params }) => {
    await deleteSnapshot(ctx, params.name, params.snapshot);
    return new Response(null, { status: 204 });
  });
  router.add("POST", "/v1/domains/:name/snapshots/:snapshot/revert", async ({ params }) => {
    return jsonResponse(await revertSnapshot(ctx, params.name, params.snapshot));
  });
  router.add("POST", "/v1/domains/:name/clone", async ({ request, params }) => {
    return jsonResponse(await cloneDomain(ctx, params.name, await readJsonBody(request)), 201);
  });
}
