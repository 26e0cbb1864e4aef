/**
 * GET /v1/openapi.json: the OpenAPI 3.1 description of the API (manager/daemon/openapi.ts).
 *
 * @module
 */

import { ApiError, type Router } from "./router.ts";

/** Adds the OpenAPI route to `router`. */
export function addOpenApiRoute(router: Router): void {
  router.add("GET", "/v1/openapi.json", () => {
    throw new ApiError("not_found", "The OpenAPI description is not built into this daemon yet");
  });
}
