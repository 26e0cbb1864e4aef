/**
 * A small HTTP router shared by the daemon's API and each VMM's control API: routes by
 * method and path pattern ("/v1/domains/:name/:action"), answers a known path with a
 * wrong method with 405 and `Allow`, turns every coded error (`DenovisorError`, of which
 * `ApiError` is one) into the JSON error body with the status of its code, and anything
 * else into a 500 that names the failure. No status is ever chosen from a message.
 *
 * @module
 */

import { DenovisorError, HTTP_STATUS } from "../errors.ts";
import { ApiError, type ErrorBody } from "./api_error.ts";

/** What a handler gets: the request, the path parameters and the parsed URL. */
export interface RouteContext {
  request: Request;
  params: Record<string, string>;
  url: URL;
}

/** A route's handler; a thrown error becomes the error answer. */
export type RouteHandler = (context: RouteContext) => Promise<Response> | Response;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
}

/** A JSON response. */
export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Routes requests to handlers by method and path. */
export class Router {
  readonly #routes: Route[] = [];

  /** Adds a route; `:name` segments match one path segment and land in `params`. */
  add(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method, segments: pattern.split("/").filter(Boolean), handler });
    return this;
  }

  /** Answers one request; never throws. */
  async handle(request: Request): Promise<Response> {
    let url: URL;
    let segments: string[];
    try {
      url = new URL(request.url);
      segments = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      return errorResponse(new ApiError("invalid", `The request path is not a valid URL path`));
    }
    const allowed = new Set<string>();
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      if (route.method !== request.method) {
        allowed.add(route.method);
        continue;
      }
      try {
        return await route.handler({ request, params, url });
      } catch (error) {
        return errorResponse(error);
      }
    }
    if (allowed.size === 0) {
      return errorResponse(new ApiError("not_found", `No API path ${url.pathname}`));
    }
    const allow = [...allowed].sort().join(", ");
    return errorResponse(
      new ApiError(
        "invalid",
        `${request.method} is not allowed on ${url.pathname}; use ${allow}`,
        { status: 405, headers: { allow } },
      ),
    );
  }
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(":")) params[pattern[i].slice(1)] = path[i];
    else if (pattern[i] !== path[i]) return undefined;
  }
  return params;
}

/**
 * The JSON error response for `error`: a coded error keeps its code and the status the
 * one table gives it; anything else is `internal` (500).
 */
export function errorResponse(error: unknown): Response {
  const body: ErrorBody = {
    error: error instanceof DenovisorError
      ? { code: error.code, message: error.message }
      : { code: "internal", message: error instanceof Error ? error.message : String(error) },
  };
  const status = error instanceof ApiError ? error.status : HTTP_STATUS[body.error.code];
  const response = jsonResponse(body, status);
  if (error instanceof ApiError) {
    for (const [name, value] of Object.entries(error.headers)) response.headers.set(name, value);
  }
  return response;
}
