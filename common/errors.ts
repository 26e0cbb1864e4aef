/**
 * The one error base of the project: every error a caller may act on carries a
 * machine-readable code. HTTP statuses (the daemon and the VMM's control API) and exit
 * statuses (the CLI) are mapped from that code in one table each, never from a message.
 *
 * @module
 */

/**
 * What kind of failure an error is, independent of how it is reported:
 * - `invalid`: the input (a definition, a request, a file, a saved state) is malformed;
 * - `usage`: a command was called wrongly (flags, arguments);
 * - `not_found`: no such domain, pool, volume or file;
 * - `conflict`: the object is in the wrong state for this (running, exists, active);
 * - `busy`: the object is in use by someone else right now (a lock, another operation);
 * - `unavailable`: a service or host resource is not there (no daemon, no KVM, no tap);
 * - `too_large`: a request or file is above its limit;
 * - `forbidden`: outside what this caller may touch;
 * - `timeout`: the work did not finish in time;
 * - `internal`: anything else (a bug, an I/O error).
 */
export type ErrorCode =
  | "invalid"
  | "usage"
  | "not_found"
  | "conflict"
  | "busy"
  | "unavailable"
  | "too_large"
  | "forbidden"
  | "timeout"
  | "internal";

/** Every code, for validation of codes that arrive over the wire. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "invalid",
  "usage",
  "not_found",
  "conflict",
  "busy",
  "unavailable",
  "too_large",
  "forbidden",
  "timeout",
  "internal",
];

/** The base of every coded error. `name` is the subclass's name. */
export class DenovisorError extends Error {
  /** The machine-readable kind of failure. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The HTTP status for each code: the only place it is decided. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid: 400,
  usage: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  busy: 409,
  too_large: 413,
  internal: 500,
  unavailable: 503,
  timeout: 504,
};

/**
 * The CLI's exit status for each code: the only place it is decided. The README and
 * `denovisor help` document them: 0 ok, 1 failure, 2 usage, 3 daemon unreachable, 4 not
 * found, 5 conflict (wrong state or in use), 6 invalid definition or request.
 */
export const EXIT_STATUS: Readonly<Record<ErrorCode, number>> = {
  internal: 1,
  timeout: 1,
  forbidden: 1,
  usage: 2,
  unavailable: 3,
  not_found: 4,
  conflict: 5,
  busy: 5,
  invalid: 6,
  too_large: 6,
};

/** The exit status of a command that succeeded. */
export const EXIT_OK = 0;

/** The code of any thrown value: coded errors keep theirs, anything else is internal. */
export function errorCode(error: unknown): ErrorCode {
  return error instanceof DenovisorError ? error.code : "internal";
}

/** Whether a string received over the wire names a code. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}
