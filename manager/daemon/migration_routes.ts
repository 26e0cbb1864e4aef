/**
 * The API routes of live migration (manager/api_types.ts): added before the generic
 * `POST /v1/domains/{name}/{action}` route, which would take `migrate` for an unknown
 * action otherwise.
 *
 * @module
 */

import { jsonResponse, readJsonBody, type Router } from "../../common/http/mod.ts";
import type { DomainMigrations } from "./migration_ops.ts";

/** Adds POST /v1/domains/{name}/migrate and /migrate-abort to `router`. */
export function addMigrationRoutes(router: Router, migrations: DomainMigrations): void {
  router.add("POST", "/v1/domains/:name/migrate", async ({ request, params }) => {
    const body = await readJsonBody(request);
    const answer = await migrations.migrate(params.name, body);
    const waited = (body as { wait?: unknown } | null)?.wait !== false;
    return jsonResponse(answer, waited ? 200 : 202);
  });
  router.add("POST", "/v1/domains/:name/migrate-abort", async ({ params }) => {
    return jsonResponse(await migrations.abort(params.name));
  });
}
