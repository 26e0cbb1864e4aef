/**
 * The farm's API types (GET/PUT/POST /v1/farm/...), shared by the daemon and the CLI.
 *
 *   GET  /v1/farm                          -> FarmStatus
 *   GET  /v1/farm/hosts                    -> FarmHost[]
 *   GET  /v1/farm/events[?limit=N]         -> EventRecord[] (oldest first)
 *   PUT  /v1/farm/hosts/{host}/maintenance { enabled } -> FarmHost
 *   POST /v1/farm/hosts/{host}/evacuate    -> EvacuationStep[]
 *   POST /v1/domains/{name}/start[?host=auto|NAME]   (in a farm: placed, owned by txn)
 *
 * @module
 */

import type { EventRecord, HostRecord } from "./farm_records.ts";
import type { EvacuationStep } from "./farm_ha.ts";

export type { EvacuationStep, EventRecord };

/** A host with its load, as placement sees it. */
export interface FarmHost extends HostRecord {
  maintenance: boolean;
  freeMemoryBytes: number;
  freeVcpus: number;
  domains: string[];
}

/** GET /v1/farm. */
export interface FarmStatus {
  farm: string;
  /** The host that answered. */
  host: string;
  etcd: { version: string; leader: string; revision: number };
  leaseTtlSeconds: number;
  fenceAfterSeconds: number;
  haDelaySeconds: number;
  /** This host could not renew its lease and has fenced itself. */
  fenced: boolean;
  hosts: FarmHost[];
  /** Running domains and their hosts. */
  owners: { domain: string; host: string; since: string; detached?: boolean }[];
}
