/**
 * The farm's API types (GET/PUT/POST /v1/farm/...), shared by the daemon and the CLI.
 *
 *   GET  /v1/farm                          -> FarmStatus
 *   GET  /v1/farm/hosts[?all=1]            -> FarmHost[] (all=1: down members too)
 *   GET  /v1/farm/hosts/{host}             -> FarmHostInfo
 *   DELETE /v1/farm/hosts/{host}           -> 204 (a member that is down and runs nothing)
 *   GET  /v1/farm/events[?limit=N]         -> EventRecord[] (oldest first)
 *   PUT  /v1/farm/hosts/{host}/maintenance { enabled } -> FarmHost
 *   POST /v1/farm/hosts/{host}/evacuate[?progress=1] -> EvacuationStep[] (NDJSON steps)
 *   POST /v1/domains/{name}/migrate        { dest?: HOST | ADDR:PORT, ... } (placed without)
 *   POST /v1/domains/{name}/start[?host=auto|NAME]   (in a farm: placed, owned by txn)
 *
 * @module
 */

import type { EventRecord, HostRecord } from "./farm_records.ts";
import type { EvacuationStep } from "./farm_ha.ts";
import type { EndpointHealth } from "./etcd_types.ts";

export type { EvacuationStep, EventRecord };

/** A host with its load, as placement sees it. */
export interface FarmHost extends HostRecord {
  /** "down": a member whose lease is gone (it left or was lost) and not removed. */
  state: "up" | "maintenance" | "down";
  maintenance: boolean;
  freeMemoryBytes: number;
  freeVcpus: number;
  domains: string[];
}

/** GET /v1/farm/hosts/{host}. */
export interface FarmHostInfo extends FarmHost {
  /** The domains whose owner key names the host. */
  running: { domain: string; since: string; detached?: boolean }[];
  /** Its last events (by it or about it). */
  events: EventRecord[];
}

/** GET /v1/farm. */
export interface FarmStatus {
  farm: string;
  /** The host that answered. */
  host: string;
  etcd: {
    version: string;
    leader: string;
    revision: number;
    /** Each --etcd endpoint: answering or not, the leader. */
    endpoints?: EndpointHealth[];
  };
  leaseTtlSeconds: number;
  fenceAfterSeconds: number;
  haDelaySeconds: number;
  /** This host could not renew its lease and has fenced itself. */
  fenced: boolean;
  /** Every member: up, in maintenance, or down (left or lost, not removed). */
  hosts: FarmHost[];
  /** Running domains and their hosts. */
  owners: { domain: string; host: string; since: string; detached?: boolean }[];
}
