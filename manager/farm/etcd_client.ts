/**
 * An etcd v3 client on etcd 3.4's JSON gateway (`POST /v3/...`, keys and values base64,
 * int64s as strings) with nothing but `fetch`: no gRPC stack, no npm package. Several
 * endpoints are tried in turn (the first that answers is kept); TLS with a private CA
 * and a client certificate goes through `Deno.createHttpClient`; user/password auth
 * takes a token from /v3/auth/authenticate and takes a new one when etcd says it expired.
 *
 * @module
 */

import {
  type Compare,
  type EndpointHealth,
  EtcdError,
  type EtcdKv,
  type KeyValue,
  type Operation,
  type TxnResult,
  type Watch,
  type WatchEvent,
} from "./etcd_types.ts";
import {
  answerError,
  b64,
  grpcError,
  keyValue,
  num,
  prefixEnd,
  putRequest,
  rawCompare,
  type RawEvent,
  type RawKv,
  rawOperation,
} from "./etcd_codec.ts";

export { prefixEnd };

/** How to reach etcd. */
export interface EtcdOptions {
  /** Client URLs, e.g. ["https://10.0.0.1:2379"]; tried in order. */
  endpoints: string[];
  /** PEM of the CA that signed etcd's certificate (--etcd-cacert). */
  caCert?: string;
  /** PEM of this daemon's client certificate and key (--etcd-cert, --etcd-key). */
  cert?: string;
  key?: string;
  /** etcd user and password (etcd's auth enabled). */
  user?: string;
  password?: string;
  /** Bound on one unary call (default 5 s). */
  timeoutMs?: number;
}

const GRPC_UNAUTHENTICATED = 16;
const GRPC_NOT_FOUND = 5;

/** An etcd v3 client over HTTP+JSON. */
export class EtcdClient implements EtcdKv {
  readonly #endpoints: string[];
  readonly #options: EtcdOptions;
  readonly #http?: Deno.HttpClient;
  readonly #watches = new Set<AbortController>();
  #current = 0;
  #token?: string;

  constructor(options: EtcdOptions) {
    if (options.endpoints.length === 0) {
      throw new EtcdError("invalid", "No etcd endpoint given; pass --etcd URL[,URL...]");
    }
    this.#endpoints = options.endpoints.map(checkEndpoint);
    this.#options = options;
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new EtcdError(
        "invalid",
        "--etcd-cert and --etcd-key go together; give both or neither",
      );
    }
    if (options.caCert !== undefined || options.cert !== undefined) {
      this.#http = Deno.createHttpClient({
        caCerts: options.caCert === undefined ? undefined : [options.caCert],
        ...(options.cert !== undefined ? { cert: options.cert, key: options.key! } : {}),
      });
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const answer = await this.#call("kv/range", { key: b64(key) });
    return (answer.kvs as RawKv[] | undefined)?.map(keyValue)[0];
  }

  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const answer = await this.#call("kv/range", { key: b64(prefix), range_end: prefixEnd(prefix) });
    return {
      kvs: ((answer.kvs ?? []) as RawKv[]).map(keyValue),
      revision: num(answer.header?.revision),
    };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const answer = await this.#call("kv/put", putRequest(key, value, lease));
    return num(answer.header?.revision);
  }

  async delete(key: string, prefix = false): Promise<number> {
    const answer = await this.#call("kv/deleterange", {
      key: b64(key),
      ...(prefix ? { range_end: prefixEnd(key) } : {}),
    });
    return num(answer.deleted);
  }

  async txn(
    compare: Compare[],
    success: Operation[],
    failure: Operation[] = [],
  ): Promise<TxnResult> {
    const answer = await this.#call("kv/txn", {
      compare: compare.map(rawCompare),
      success: success.map(rawOperation),
      failure: failure.map(rawOperation),
    });
    const responses = (answer.responses ?? []) as { response_range?: { kvs?: RawKv[] } }[];
    return {
      succeeded: answer.succeeded === true,
      revision: num(answer.header?.revision),
      ranges: responses.filter((r) => r.response_range !== undefined)
        .map((r) => (r.response_range!.kvs ?? []).map(keyValue)),
    };
  }

  async grant(ttlSeconds: number): Promise<string> {
    const answer = await this.#call("lease/grant", { TTL: String(ttlSeconds) });
    return String(answer.ID);
  }

  async keepAlive(lease: string): Promise<number> {
    // A bidirectional stream in gRPC; one request in, one `{"result":...}` line out.
    const answer = await this.#call("lease/keepalive", { ID: lease });
    return num(answer.result?.TTL);
  }

  async revoke(lease: string): Promise<void> {
    try {
      await this.#call("lease/revoke", { ID: lease });
    } catch (error) {
      // Already expired or revoked: the goal is reached.
      if (!(error instanceof EtcdError && error.grpcCode === GRPC_NOT_FOUND)) throw error;
    }
  }

  async status(): Promise<{ version: string; leader: string; revision: number }> {
    const answer = await this.#call("maintenance/status", {});
    return {
      version: String(answer.version ?? ""),
      leader: String(answer.leader ?? ""),
      revision: num(answer.header?.revision),
    };
  }

  /** Asks every endpoint for its status on its own (2 s each, in parallel). */
  endpointHealth(): Promise<EndpointHealth[]> {
    return Promise.all(this.#endpoints.map(async (endpoint) => {
      try {
        const response = await fetch(`${endpoint}/v3/maintenance/status`, {
          method: "POST",
          body: "{}",
          signal: AbortSignal.timeout(2000),
          client: this.#http,
          headers: {
            "content-type": "application/json",
            ...(this.#token !== undefined ? { authorization: this.#token } : {}),
          },
        });
        if (!response.ok) {
          return { endpoint, ok: false, error: (await answerError(response, "status")).message };
        }
        const answer = await response.json();
        return {
          endpoint,
          ok: true,
          version: String(answer.version ?? ""),
          leader: answer.leader !== undefined && answer.leader === answer.header?.member_id,
        };
      } catch (error) {
        return { endpoint, ok: false, error: (error as Error).message.split("\n")[0] };
      }
    }));
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void, fromRevision?: number): Watch {
    const abort = new AbortController();
    this.#watches.add(abort);
    const body = JSON.stringify({
      create_request: {
        key: b64(prefix),
        range_end: prefixEnd(prefix),
        prev_kv: true,
        ...(fromRevision === undefined ? {} : { start_revision: String(fromRevision) }),
      },
    });
    const ended = (async () => {
      const response = await this.#send("watch", body, abort.signal);
      if (!response.ok) throw await answerError(response, "watch");
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === "") continue;
          const message = JSON.parse(line);
          if (message.error) throw grpcError(message.error, "watch");
          // A start revision etcd has compacted away: the watch is cancelled at once.
          if (message.result?.canceled && Number(message.result.compact_revision ?? 0) > 0) {
            throw new EtcdError(
              "unavailable",
              `etcd compacted the watch's start revision (now ${message.result.compact_revision})`,
            );
          }
          for (const raw of (message.result?.events ?? []) as RawEvent[]) {
            onEvent({
              type: raw.type === "DELETE" ? "delete" : "put",
              kv: keyValue(raw.kv),
              prev: raw.prev_kv ? keyValue(raw.prev_kv) : undefined,
            });
          }
        }
      }
    })().catch((error) => {
      if (!abort.signal.aborted) throw error;
    }).finally(() => this.#watches.delete(abort));
    return { close: () => abort.abort(), ended };
  }

  /** Ends the watches and drops the connection pool. Idempotent. */
  close(): void {
    for (const abort of this.#watches) abort.abort();
    try {
      this.#http?.close();
    } catch {
      // Already closed.
    }
  }

  /** One unary call; authenticates first when a user is set, again when the token expired. */
  // deno-lint-ignore no-explicit-any
  async #call(path: string, request: unknown, retried = false): Promise<any> {
    if (this.#options.user !== undefined && this.#token === undefined) await this.#authenticate();
    const signal = AbortSignal.timeout(this.#options.timeoutMs ?? 5000);
    const response = await this.#send(path, JSON.stringify(request), signal);
    if (response.ok) {
      const text = await response.text();
      // Streaming endpoints (keepalive) answer `{"result":...}`; the others the object.
      const line = text.trim().split("\n")[0];
      const parsed = JSON.parse(line === "" ? "{}" : line);
      if (parsed.error) throw grpcError(parsed.error, path);
      return parsed;
    }
    const error = await answerError(response, path);
    if (error.grpcCode === GRPC_UNAUTHENTICATED && this.#options.user !== undefined && !retried) {
      this.#token = undefined;
      return await this.#call(path, request, true);
    }
    throw error;
  }

  async #authenticate(): Promise<void> {
    const signal = AbortSignal.timeout(this.#options.timeoutMs ?? 5000);
    const response = await this.#send(
      "auth/authenticate",
      JSON.stringify({ name: this.#options.user, password: this.#options.password ?? "" }),
      signal,
      false,
    );
    if (!response.ok) {
      const error = await answerError(response, "auth/authenticate");
      throw new EtcdError(
        "forbidden",
        `etcd refused user '${this.#options.user}': ${error.message}; check the etcd user and password`,
      );
    }
    this.#token = (await response.json()).token;
  }

  /** POSTs to the current endpoint, moving on to the next ones when it cannot be reached. */
  async #send(path: string, body: string, signal: AbortSignal, auth = true): Promise<Response> {
    const failures: string[] = [];
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const index = (this.#current + tried) % this.#endpoints.length;
      const endpoint = this.#endpoints[index];
      try {
        const response = await fetch(`${endpoint}/v3/${path}`, {
          method: "POST",
          body,
          signal,
          client: this.#http,
          headers: {
            "content-type": "application/json",
            ...(auth && this.#token !== undefined ? { authorization: this.#token } : {}),
          },
        });
        this.#current = index;
        return response;
      } catch (error) {
        if (signal.aborted) {
          if ((signal.reason as Error)?.name !== "TimeoutError") throw error;
          failures.push(`${endpoint}: no answer in time`);
          break;
        }
        failures.push(`${endpoint}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
    throw new EtcdError(
      "unavailable",
      `Farm unavailable: cannot reach etcd (${
        failures.join("; ")
      }); check --etcd and that etcd runs`,
    );
  }
}

function checkEndpoint(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EtcdError("invalid", `--etcd ${url}: not a URL; expected e.g. http://127.0.0.1:2379`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new EtcdError("invalid", `--etcd ${url}: expected an http:// or https:// URL`);
  }
  return `${parsed.protocol}//${parsed.host}`;
}
