/**
 * The small interface the farm needs from etcd v3 (kv, txn, lease, watch), so that the
 * client behind it can be swapped: etcd_client.ts speaks etcd 3.4's JSON gateway with
 * `fetch`. Keys and values are strings here; revisions are numbers (etcd's int64s stay
 * below 2^53 for the life of any farm).
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** One stored key. */
export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is bound to ("0": none); a string: lease ids use all 64 bits. */
  lease: string;
}

/** A condition of a transaction (etcd's Compare). */
export type Compare =
  | { key: string; target: "create"; result: "equal" | "greater" | "less"; createRevision: number }
  | { key: string; target: "mod"; result: "equal" | "greater" | "less"; modRevision: number }
  | { key: string; target: "value"; result: "equal" | "not_equal"; value: string }
  | { key: string; target: "version"; result: "equal" | "greater" | "less"; version: number };

/** An operation of a transaction. */
export type Operation =
  | { put: { key: string; value: string; lease?: string } }
  | { deleteRange: { key: string; prefix?: boolean } }
  | { range: { key: string; prefix?: boolean } };

/** What a transaction did. */
export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** The key-values of each range operation of the branch that ran, in order. */
  ranges: KeyValue[][];
}

/** One change seen by a watch. */
export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
  /** The value before the change (deletes carry it: the watch asks for prev_kv). */
  prev?: KeyValue;
}

/** A running watch; `close()` ends it. */
export interface Watch {
  close(): void;
  /** Settles when the watch ends (closed, or the connection to etcd failed). */
  ended: Promise<void>;
}

/** What the farm uses of etcd. */
export interface EtcdKv {
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key under `prefix`, sorted by key; `revision` is the store's at the read. */
  list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }>;
  put(key: string, value: string, lease?: string): Promise<number>;
  delete(key: string, prefix?: boolean): Promise<number>;
  txn(compare: Compare[], success: Operation[], failure?: Operation[]): Promise<TxnResult>;
  /** Grants a lease of `ttlSeconds`; returns its id (decimal: ids use all 64 bits). */
  grant(ttlSeconds: number): Promise<string>;
  /** Renews a lease; returns the TTL it now has (0 or less: the lease is gone). */
  keepAlive(lease: string): Promise<number>;
  revoke(lease: string): Promise<void>;
  /** Calls `onEvent` for every change under `prefix` after `fromRevision` (default: now). */
  watch(prefix: string, onEvent: (event: WatchEvent) => void, fromRevision?: number): Watch;
  /** Whether the cluster answers (GET /health is not in the gateway: a status call). */
  status(): Promise<{ version: string; leader: string; revision: number }>;
  /** Each endpoint's own answer (for `farm status`: which members are up, which leads). */
  endpointHealth?(): Promise<EndpointHealth[]>;
  close(): void;
}

/** etcd could not be reached or refused a request. */
export class EtcdError extends DenovisorError {
  /** etcd's gRPC status code, when it answered one. */
  readonly grpcCode?: number;

  constructor(
    code: "unavailable" | "invalid" | "forbidden" | "internal",
    message: string,
    options?: ErrorOptions & { grpcCode?: number },
  ) {
    super(code, message, options);
    this.grpcCode = options?.grpcCode;
  }
}

/** One etcd endpoint as `farm status` shows it. */
export interface EndpointHealth {
  endpoint: string;
  ok: boolean;
  version?: string;
  /** It is the cluster's leader. */
  leader?: boolean;
  error?: string;
}
