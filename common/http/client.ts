/**
 * The client side of the APIs on unix sockets (the daemon's, used by the CLI verbs and
 * the REPL; a VMM's control API, used by the daemon): HTTP over the socket, JSON in and
 * out, errors turned into `ApiClientError` with the server's code and message.
 *
 * @module
 */

import { clientSocket } from "./admin_socket.ts";
import { DenovisorError, type ErrorCode, isErrorCode } from "../errors.ts";
import type { ErrorBody } from "./api_error.ts";

/**
 * A failed API call: the server's coded error, or the reason no server answered (code
 * `unavailable`, `unreachable` set), so callers map it like any `DenovisorError`.
 */
export class ApiClientError extends DenovisorError {
  /** True when no server answered on the socket (as opposed to a server's 503). */
  readonly unreachable: boolean;
  /** The HTTP status of the answer, when there was one. */
  readonly status?: number;

  constructor(code: ErrorCode | "unreachable", message: string, status?: number) {
    super(code === "unreachable" ? "unavailable" : code, message);
    this.unreachable = code === "unreachable";
    this.status = status;
  }
}

/** A connection to one daemon's API socket. */
export class ApiClient {
  readonly socket: string;
  readonly #client: Deno.HttpClient;

  constructor(socket: string) {
    this.socket = socket;
    // Root goes through root's own socket when the daemon has one (--socket-group).
    this.#client = Deno.createHttpClient({
      proxy: { transport: "unix", path: clientSocket(socket) },
    });
  }

  /** Sends one request; returns the raw response when it succeeded (2xx). */
  async request(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`http://denovisor${path}`, {
        method,
        client: this.#client,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiClientError("unreachable", unreachableMessage(this.socket, error));
    }
    if (response.ok) return response;
    const text = await response.text();
    let parsed: ErrorBody | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not our JSON error body: report the text as it is.
    }
    throw new ApiClientError(
      isErrorCode(parsed?.error?.code) ? parsed.error.code : "internal",
      parsed?.error?.message ?? `HTTP ${response.status}: ${text.trim()}`,
      response.status,
    );
  }

  /** Sends one request and parses the JSON answer (undefined for 204). */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body);
    if (response.status === 204) {
      await response.body?.cancel();
      return undefined as T;
    }
    return await response.json() as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>("POST", path, body ?? {});
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PUT", path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.call<T>("DELETE", path);
  }

  /** Releases the connection pool. Idempotent. */
  close(): void {
    try {
      this.#client.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function unreachableMessage(socket: string, error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (/permission denied|EACCES/i.test(text)) {
    return `Cannot connect to the daemon at ${socket}: permission denied; run as root`;
  }
  return `Cannot reach the daemon at ${socket} (${text.split("\n")[0]}); ` +
    `start it with 'denovisor daemon' or 'systemctl start denovisor', or pass --socket`;
}
