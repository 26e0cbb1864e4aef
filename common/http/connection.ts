/**
 * One HTTP/1.1 connection of the unix-socket server (server.ts), served request after
 * request. Every wait on the peer is bounded: the first byte of a request within the idle
 * timeout, the rest of the head within the header timeout, each piece of a body within
 * the body timeout, each write within the idle timeout. A peer that misses one is cut
 * off, so a connection that sends half a head cannot hold its descriptor for ever.
 *
 * @module
 */

import {
  type BodyFraming,
  bodyFraming,
  chunk,
  headEnd,
  keepAlive,
  LAST_CHUNK,
  MAX_HEAD_BYTES,
  parseHead,
  plainErrorResponse,
  responseHead,
} from "./http1.ts";
import { ApiError } from "./api_error.ts";
import { errorResponse } from "./router.ts";
import { upgradeOf } from "./upgrade.ts";

/** The timeouts of a connection, in milliseconds. */
export interface ConnectionTimeouts {
  headerMs: number;
  idleMs: number;
  bodyMs: number;
}

const CLOSED = Symbol("closed");
const TICK = Symbol("tick");
const LONGEST_CHUNK_LINE = 1024;
/** How long, and how much, a refused body is read and dropped after the answer. */
const LINGER_MS = 2000;
const LINGER_BYTES = 64 * 1024 * 1024;

/** Serves one accepted connection until it closes. */
export class Connection {
  readonly #conn: Deno.Conn;
  readonly #handler: (request: Request) => Response | Promise<Response>;
  readonly #timeouts: ConnectionTimeouts;
  #buffer: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #pendingFill?: Promise<boolean>;
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;
  /** Whether a request is being handled (shutdown waits for it; idle ones close). */
  busy = false;
  /** Set by shutdown: close once the current exchange is over. */
  draining = false;

  constructor(
    conn: Deno.Conn,
    handler: (request: Request) => Response | Promise<Response>,
    timeouts: ConnectionTimeouts,
  ) {
    this.#conn = conn;
    this.#handler = handler;
    this.#timeouts = timeouts;
  }

  /** Closes the connection now (idempotent); pending reads and writes fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Serves requests until the peer leaves, a timeout fires or the framing breaks. */
  async serve(): Promise<void> {
    try {
      while (!this.#closed && !this.draining) {
        this.#arm(this.#timeouts.idleMs);
        if (this.#buffer.length === 0 && !await this.#fill()) return;
        this.#arm(this.#timeouts.headerMs);
        let end = headEnd(this.#buffer);
        while (end < 0) {
          if (this.#buffer.length > MAX_HEAD_BYTES) {
            return await this.#refuse(
              431,
              `The request head is larger than ${MAX_HEAD_BYTES} bytes`,
            );
          }
          if (!await this.#fill()) return;
          end = headEnd(this.#buffer);
        }
        this.#arm(undefined);
        if (end > MAX_HEAD_BYTES) {
          return await this.#refuse(431, `The request head is larger than ${MAX_HEAD_BYTES} bytes`);
        }
        const headBytes = this.#buffer.subarray(0, end - 4);
        this.#buffer = this.#buffer.slice(end);
        if (!await this.#exchange(headBytes)) return;
      }
    } catch {
      // A reset peer or a closed descriptor: this connection is over, nothing to report.
    } finally {
      this.close();
    }
  }

  /** One request and its response; whether the connection may carry another. */
  async #exchange(headBytes: Uint8Array): Promise<boolean> {
    let head;
    let framing: BodyFraming;
    try {
      head = parseHead(headBytes);
      framing = bodyFraming(head);
    } catch (error) {
      await this.#refuse(400, (error as Error).message);
      return false;
    }
    const body = framing.kind === "none" ? undefined : this.#bodyStream(framing);
    const hasBodyMethod = head.method !== "GET" && head.method !== "HEAD";
    if (body && head.headers.get("expect")?.toLowerCase() === "100-continue") {
      await this.#write(new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n"));
    }
    let keep = keepAlive(head);
    this.busy = true;
    try {
      let request: Request;
      try {
        request = new Request(`http://localhost${head.target}`, {
          method: head.method,
          headers: head.headers,
          body: hasBodyMethod ? body?.stream : undefined,
          // @ts-ignore: `duplex` is required for a streamed body but missing in some typings.
          duplex: "half",
        });
      } catch (error) {
        // A method fetch forbids (CONNECT, TRACE) or a target it cannot take.
        await this.#refuse(400, `The request cannot be served: ${(error as Error).message}`);
        return false;
      }
      let response: Response;
      try {
        response = await this.#handler(request);
      } catch (error) {
        response = errorResponse(error);
      }
      const upgrade = upgradeOf(response);
      if (upgrade !== undefined) {
        await this.#write(
          new TextEncoder().encode(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
              `Upgrade: ${upgrade.protocol}\r\n\r\n`,
          ),
        );
        const early = this.#buffer;
        this.#buffer = new Uint8Array(0);
        await upgrade.take(this.#conn, early);
        return false;
      }
      // A body the handler left unread would be taken for the next request: close instead.
      const unread = body !== undefined && !body.finished();
      if (unread) keep = false;
      if (this.draining) keep = false;
      // HTTP/1.0 knows no chunked encoding: its streamed bodies end with the connection.
      if (head.version === "HTTP/1.0" && response.body !== null) keep = false;
      await this.#respond(response, head.method === "HEAD", keep, head.version === "HTTP/1.1");
      if (unread) await this.#linger();
      return keep;
    } finally {
      this.busy = false;
    }
  }

  /** Writes `response`: Content-Length when the whole body is at hand, else chunked. */
  async #respond(
    response: Response,
    headOnly: boolean,
    keep: boolean,
    chunked: boolean,
  ): Promise<void> {
    const frame = (data: Uint8Array) => chunked ? chunk(data) : data;
    const headers = new Headers(response.headers);
    for (const name of ["content-length", "transfer-encoding", "connection"]) headers.delete(name);
    if (!keep) headers.set("connection", "close");
    const status = response.status;
    if (response.body === null || headOnly || status === 204 || status === 304) {
      await response.body?.cancel().catch(() => {});
      if (status !== 204 && status !== 304) headers.set("content-length", "0");
      await this.#write(responseHead(status, headers));
      return;
    }
    const reader = response.body.getReader();
    try {
      let next = reader.read();
      const first = await raceTick(next);
      if (first !== TICK && !first.done) {
        next = reader.read();
        const second = await raceTick(next);
        if (second !== TICK && second.done) {
          headers.set("content-length", String(first.value.byteLength));
          await this.#write(concat(responseHead(status, headers), first.value));
          return;
        }
        if (chunked) headers.set("transfer-encoding", "chunked");
        await this.#write(concat(responseHead(status, headers), frame(first.value)));
      } else if (first !== TICK) {
        headers.set("content-length", "0");
        await this.#write(responseHead(status, headers));
        return;
      } else {
        if (chunked) headers.set("transfer-encoding", "chunked");
        await this.#write(responseHead(status, headers));
      }
      // A long stream (events) ends when the peer goes: watch for its end of file.
      const peerGone = this.#fill().then((open) => open ? new Promise<never>(() => {}) : CLOSED);
      for (;;) {
        const result = await Promise.race([next, peerGone]);
        if (result === CLOSED) {
          this.close();
          return;
        }
        if (result.done) break;
        if (result.value.byteLength > 0) await this.#write(frame(result.value));
        next = reader.read();
      }
      if (chunked) await this.#write(LAST_CHUNK);
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** The request body as a stream that reads the connection on demand. */
  #bodyStream(framing: BodyFraming): { stream: ReadableStream<Uint8Array>; finished(): boolean } {
    let remaining = framing.kind === "length" ? framing.length : 0;
    let done = false;
    let inChunk = false;
    const take = async (max: number): Promise<Uint8Array> => {
      if (this.#buffer.length === 0) {
        this.#arm(this.#timeouts.bodyMs);
        const open = await this.#fill();
        this.#arm(undefined);
        if (!open) throw new ApiError("invalid", "The request body ended before its length");
      }
      const part = this.#buffer.slice(0, max);
      this.#buffer = this.#buffer.slice(part.byteLength);
      return part;
    };
    const line = async (): Promise<string> => {
      for (;;) {
        const index = this.#buffer.indexOf(10);
        if (index >= 0) {
          const text = new TextDecoder().decode(this.#buffer.subarray(0, index)).trim();
          this.#buffer = this.#buffer.slice(index + 1);
          return text;
        }
        if (this.#buffer.length > LONGEST_CHUNK_LINE) {
          throw new ApiError("invalid", "A chunk-size line of the request body is too long");
        }
        this.#arm(this.#timeouts.bodyMs);
        const open = await this.#fill();
        this.#arm(undefined);
        if (!open) throw new ApiError("invalid", "The chunked request body ended early");
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (framing.kind === "length") {
          const part = await take(Math.min(remaining, 64 * 1024));
          remaining -= part.byteLength;
          controller.enqueue(part);
          if (remaining === 0) {
            done = true;
            controller.close();
          }
          return;
        }
        if (!inChunk) {
          const size = parseInt((await line()).split(";")[0], 16);
          if (!Number.isSafeInteger(size) || size < 0) {
            throw new ApiError("invalid", "A chunk size of the request body is not hexadecimal");
          }
          if (size === 0) {
            while ((await line()) !== "");
            done = true;
            controller.close();
            return;
          }
          remaining = size;
          inChunk = true;
        }
        const part = await take(Math.min(remaining, 64 * 1024));
        remaining -= part.byteLength;
        if (remaining === 0) {
          if ((await line()) !== "") throw new ApiError("invalid", "A chunk lacks its CRLF");
          inChunk = false;
        }
        controller.enqueue(part);
      },
    });
    return { stream, finished: () => done };
  }

  /**
   * After answering a request whose body was not read (a 413, say), reads and drops what
   * the client still sends, for a moment: closed at once, the client would fail its
   * write with EPIPE and never see the answer. Bounded in time and bytes.
   */
  async #linger(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch {
      return; // Gone already.
    }
    this.#arm(LINGER_MS);
    let dropped = 0;
    while (dropped < LINGER_BYTES && await this.#fill()) {
      dropped += this.#buffer.length;
      this.#buffer = new Uint8Array(0);
    }
    this.#arm(undefined);
  }

  /** Reads more bytes into the buffer; false at end of file. One read at a time. */
  #fill(): Promise<boolean> {
    this.#pendingFill ??= (async () => {
      const scratch = new Uint8Array(16 * 1024);
      try {
        const count = await this.#conn.read(scratch);
        if (count === null) return false;
        this.#buffer = concat(this.#buffer, scratch.subarray(0, count));
        return true;
      } catch {
        return false;
      } finally {
        this.#pendingFill = undefined;
      }
    })();
    return this.#pendingFill;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    this.#arm(this.#timeouts.idleMs);
    try {
      for (let offset = 0; offset < bytes.byteLength;) {
        offset += await this.#conn.write(bytes.subarray(offset));
      }
    } finally {
      this.#arm(undefined);
    }
  }

  async #refuse(status: number, message: string): Promise<void> {
    await this.#write(plainErrorResponse(status, "invalid", message)).catch(() => {});
  }

  /** Closes the connection after `ms` unless re-armed; undefined disarms. */
  #arm(ms: number | undefined): void {
    clearTimeout(this.#timer);
    this.#timer = ms === undefined ? undefined : setTimeout(() => this.close(), ms);
  }
}

function raceTick<T>(promise: Promise<T>): Promise<T | typeof TICK> {
  return Promise.race([promise, new Promise<typeof TICK>((r) => setTimeout(() => r(TICK), 0))]);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(a.byteLength + b.byteLength);
  bytes.set(a);
  bytes.set(b, a.byteLength);
  return bytes;
}
