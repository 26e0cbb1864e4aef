/**
 * The daemon's side of a VMM's control API (vmm/vmm_config.ts): HTTP+JSON over
 * `<domainRunDir>/vmm.sock`, every call bounded by a timeout so that a hung VMM can
 * never hang the daemon (it becomes a 504 that says what to do).
 *
 * @module
 */

import { type ErrorCode, isErrorCode } from "../../common/errors.ts";
import { ApiError } from "../../common/http/mod.ts";

/** Default bound on one control call. */
export const VMM_CALL_TIMEOUT_MS = 5000;

/** A connection to one VMM's control socket. */
export class VmmControl {
  readonly socket: string;
  readonly domain: string;
  #client: Deno.HttpClient | undefined;

  constructor(domain: string, socket: string) {
    this.domain = domain;
    this.socket = socket;
  }

  /** Calls `method path` and returns the parsed JSON answer. */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = VMM_CALL_TIMEOUT_MS,
  ): Promise<T> {
    this.#client ??= Deno.createHttpClient({ proxy: { transport: "unix", path: this.socket } });
    let response: Response;
    let text: string;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      response = await fetch(`http://vmm${path}`, {
        method,
        client: this.#client,
        signal,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await response.text();
    } catch (error) {
      if (signal.aborted) {
        throw new ApiError(
          "timeout",
          `The VMM of domain '${this.domain}' did not answer ${method} ${path} within ` +
            `${timeoutMs / 1000} s; if it stays stuck, run 'denovisor destroy ${this.domain}'`,
        );
      }
      throw new ApiError(
        "internal",
        `Cannot reach the VMM of domain '${this.domain}' at ${this.socket}: ${
          error instanceof Error ? error.message.split("\n")[0] : String(error)
        }`,
      );
    }
    if (!response.ok) throw vmmError(this.domain, method, path, response.status, text);
    return (text.trim() === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Drops the connection pool (the VMM is gone or no longer ours). Idempotent. */
  close(): void {
    try {
      this.#client?.close();
    } catch {
      // Already closed.
    }
    this.#client = undefined;
  }
}

/** The VMM's error, with its code when it used the daemon's error body. */
function vmmError(domain: string, method: string, path: string, status: number, text: string) {
  let code: ErrorCode = status === 409 ? "conflict" : status === 400 ? "invalid" : "internal";
  let message = text.trim();
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed?.error?.message === "string") message = parsed.error.message;
    if (isErrorCode(parsed?.error?.code)) code = parsed.error.code;
  } catch {
    // Plain text: keep it.
  }
  return new ApiError(
    code,
    `The VMM of domain '${domain}' refused ${method} ${path} (HTTP ${status}): ${message}`,
  );
}
