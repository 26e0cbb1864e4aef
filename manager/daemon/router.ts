/**
 * A small HTTP router for the daemon API: routes by method and path pattern
 * ("/v1/domains/:name/:action"), turns `ApiError` into the JSON error body and status of
 * manager/api_types.ts, and anything else into a 500 that names the failure.
 *
 * @module
 */

import { API_ERROR_STATUS, type ApiErrorBody, type ApiErrorCode } from "../api_types.ts";

/** An error the API reports to its client with a code and a precise message. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;

  constructor(code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ApiError";
    this.code = code;
  }

  get status(): number {
    return API_ERROR_STATUS[this.code];
  }
}

/** What a handler gets: the request, the path parameters and the parsed URL. */
export interface RouteContext {
  request: Request;
  params: Record<string, string>;
  url: URL;
}

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

/** The request body as JSON, or an `invalid` ApiError that says why it is not. */
export async function readJsonBody(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(
      "invalid",
      `The request body is not valid JSON: ${(error as Error).message}`,
    );
  }
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
    const url = new URL(request.url);
    const segments = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let pathMatched = false;
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== request.method) continue;
      try {
        return await route.handler({ request, params, url });
      } catch (error) {
        return errorResponse(error);
      }
    }
    return pathMatched
      ? errorResponse(
        new ApiError("invalid", `${request.method} is not allowed on ${url.pathname}`),
      )
      : errorResponse(new ApiError("not_found", `No API path ${url.pathname}`));
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

/** The JSON error response for `error`; unexpected errors become `internal`. */
export function errorResponse(error: unknown): Response {
  const apiError = error instanceof ApiError
    ? error
    : new ApiError("internal", error instanceof Error ? error.message : String(error));
  const body: ApiErrorBody = { error: { code: apiError.code, message: apiError.message } };
  return jsonResponse(body, apiError.status);
}
