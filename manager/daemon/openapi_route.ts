/**
 * GET /v1/openapi.json: the OpenAPI 3.1 description of the API (manager/daemon/openapi.ts).
 *
 * @module
 */

import { jsonResponse, type Router } from "../../common/http/mod.ts";
import { OPENAPI_DOCUMENT } from "./openapi.ts";

/** Adds the OpenAPI route to `router`. */
export function addOpenApiRoute(router: Router): void {
  router.add("GET", "/v1/openapi.json", () => jsonResponse(OPENAPI_DOCUMENT));
}
