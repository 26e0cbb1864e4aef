/**
 * An HTTP/1.1 server on a unix socket that owns its accept loop, because `Deno.serve`
 * has no header timeout, no connection cap and dies on EMFILE. Here: every connection is
 * bounded in time (connection.ts), at most `maxConnections` are served at once (more are
 * answered 503 and closed, so one client cannot take every descriptor), and a failing
 * accept (EMFILE, ENFILE at the descriptor limit) is back-pressure: logged once, waited
 * out with a growing pause, retried; never a crash.
 *
 * @module
 */

import { Connection, type ConnectionTimeouts } from "./connection.ts";
import { plainErrorResponse } from "./http1.ts";

/** Options of `serveUnix`. */
export interface UnixServerOptions {
  /** The socket's path; it must not exist. */
  path: string;
  /** Time from a request's first byte to the end of its head (default 10 s). */
  headerTimeoutMs?: number;
  /** Time a kept-alive connection may wait for its next request, and a write may take (60 s). */
  idleTimeoutMs?: number;
  /** Time a request body may pause between two pieces (30 s). */
  bodyTimeoutMs?: number;
  /** Connections served at once (default 512); more are answered 503 and closed. */
  maxConnections?: number;
  /** Where the server reports accept failures (default: stderr). */
  log?: (line: string) => void;
}

/** The defaults: generous for any real client, short enough to free descriptors. */
export const SERVER_DEFAULTS = {
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  bodyTimeoutMs: 30_000,
  maxConnections: 512,
} as const;

/** The longest pause between two accept attempts when descriptors are short. */
const MAX_ACCEPT_PAUSE_MS = 1000;
/** The shortest time between two reports of failing accepts. */
const REPORT_INTERVAL_MS = 10_000;

/** A listening server. */
export class UnixHttpServer {
  readonly path: string;
  /** Resolves when the server has stopped and every connection has closed. */
  readonly finished: Promise<void>;
  readonly #listener: Deno.UnixListener;
  readonly #connections = new Set<Connection>();
  readonly #handler: (request: Request) => Response | Promise<Response>;
  readonly #timeouts: ConnectionTimeouts;
  readonly #max: number;
  readonly #log: (line: string) => void;
  #stopping = false;
  #wakeAccept?: () => void;

  constructor(
    options: UnixServerOptions,
    handler: (request: Request) => Response | Promise<Response>,
  ) {
    this.path = options.path;
    this.#handler = handler;
    this.#timeouts = {
      headerMs: options.headerTimeoutMs ?? SERVER_DEFAULTS.headerTimeoutMs,
      idleMs: options.idleTimeoutMs ?? SERVER_DEFAULTS.idleTimeoutMs,
      bodyMs: options.bodyTimeoutMs ?? SERVER_DEFAULTS.bodyTimeoutMs,
    };
    this.#max = options.maxConnections ?? SERVER_DEFAULTS.maxConnections;
    this.#log = options.log ?? ((line) => console.error(line));
    this.#listener = Deno.listen({ transport: "unix", path: options.path });
    this.finished = this.#acceptLoop();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting, closes idle connections at once and the others after their current
   * exchange; resolves when all are closed.
   */
  async shutdown(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      try {
        this.#listener.close();
      } catch {
        // Closed already.
      }
      this.#wakeAccept?.();
      for (const connection of this.#connections) {
        connection.draining = true;
        if (!connection.busy) connection.close();
      }
    }
    await this.finished;
  }

  async #acceptLoop(): Promise<void> {
    const served = new Set<Promise<void>>();
    let pause = 0;
    let lastReport = -Infinity;
    while (!this.#stopping) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
        pause = 0;
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) break;
        // EMFILE/ENFILE (or any other failure to accept): the peer stays queued in the
        // kernel; wait for descriptors to come back instead of spinning or dying.
        // Reported at most every 10 s: at the limit, accept fails again after each success.
        if (Date.now() - lastReport >= REPORT_INTERVAL_MS) {
          lastReport = Date.now();
          this.#log(`cannot accept a connection (${describe(error)}); retrying`);
        }
        pause = Math.min(MAX_ACCEPT_PAUSE_MS, Math.max(10, pause * 2));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          this.#wakeAccept = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeAccept = undefined;
        continue;
      }
      if (this.#connections.size >= this.#max) {
        this.#turnAway(conn);
        continue;
      }
      const connection = new Connection(conn, this.#handler, this.#timeouts);
      this.#connections.add(connection);
      const done = connection.serve().finally(() => {
        this.#connections.delete(connection);
        served.delete(done);
      });
      served.add(done);
    }
    await Promise.all(served);
  }

  /** Answers 503 without reading the request, and closes. */
  #turnAway(conn: Deno.Conn): void {
    const answer = plainErrorResponse(
      503,
      "unavailable",
      `The daemon is serving ${this.#max} connections already; retry in a moment`,
    );
    const timer = setTimeout(() => close(), 1000);
    const close = () => {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    };
    conn.write(answer).then(close, close);
  }
}

/** Serves `handler` on the unix socket `options.path`. */
export function serveUnix(
  options: UnixServerOptions,
  handler: (request: Request) => Response | Promise<Response>,
): UnixHttpServer {
  return new UnixHttpServer(options, handler);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
