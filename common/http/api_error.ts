/**
 * The error an HTTP API (the daemon's, a VMM's control API) reports to its client: a
 * coded `DenovisorError` whose status comes from common/errors.ts's one table, with an
 * optional status of its own for the few protocol answers that table does not name
 * (405 Method Not Allowed, 415 Unsupported Media Type) and headers such as `Allow`.
 *
 * @module
 */

import { DenovisorError, type ErrorCode, HTTP_STATUS } from "../errors.ts";

/** Options of `ApiError`. */
export interface ApiErrorOptions extends ErrorOptions {
  /** A protocol status that the code alone does not say (405, 415); else the table's. */
  status?: number;
  /** Headers the error response carries, e.g. `Allow` on a 405. */
  headers?: Record<string, string>;
}

/** An error the API reports to its client with a code and a precise message. */
export class ApiError extends DenovisorError {
  readonly #status?: number;
  /** Headers the error response carries. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.#status = options.status;
    this.headers = options.headers ?? {};
  }

  /** The HTTP status: the code's, unless a protocol status was given. */
  get status(): number {
    return this.#status ?? HTTP_STATUS[this.code];
  }
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    /** What was wrong and what to do, e.g. "disks[1].volume: no volume 'web' in pool 'default'". */
    message: string;
  };
}
