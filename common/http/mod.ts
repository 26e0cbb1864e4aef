/**
 * HTTP for the APIs on unix sockets (the daemon's and each VMM's control API): the
 * router, the coded `ApiError` and its JSON body, and request bodies read as untrusted
 * input.
 *
 * ```ts
 * import { jsonResponse, Router } from "./mod.ts";
 * const router = new Router().add("GET", "/vm", () => jsonResponse({ state: "running" }));
 * ```
 *
 * @module
 */

export { ApiError, type ApiErrorOptions, type ErrorBody } from "./api_error.ts";
export {
  firstDuplicateKey,
  type JsonBodyOptions,
  MAX_BODY_BYTES,
  parseRequest,
  readBodyText,
  readJsonBody,
} from "./json_body.ts";
export {
  errorResponse,
  jsonResponse,
  type RouteContext,
  type RouteHandler,
  Router,
} from "./router.ts";
export {
  CONSOLE_PROTOCOL,
  relay,
  type UpgradeHandler,
  upgradeOf,
  upgradeResponse,
} from "./upgrade.ts";
