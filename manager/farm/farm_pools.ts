/**
 * Shared pools in a farm: a pool of type "shared" (storage every host mounts at the same
 * path) defined on one host is stored in etcd (`pools/<pool>`) and defined on every other
 * host, and started there when marked autostart (it starts only where the mount is).
 * Each host publishes its active pools, so placement puts a domain only where the pools
 * of its disks are.
 *
 * @module
 */

import type { PoolDefinition, PoolInfo } from "../api_types.ts";
import { parseRecord } from "./farm_records.ts";
import type { FarmStore } from "./farm_store.ts";

/** What the farm uses of the daemon's pool manager. */
export interface FarmPools {
  list(): PoolInfo[];
  define(body: unknown): PoolInfo;
  start(name: string): PoolInfo;
}

/** The names of the pools active on this host (for the host record). */
export function activePools(pools: FarmPools): string[] {
  return pools.list().filter((p) => p.state === "active").map((p) => p.name).sort();
}

/** Publishes this host's shared pools that the farm lacks and defines the farm's here. */
export async function syncSharedPools(
  store: FarmStore,
  pools: FarmPools,
  log: (line: string) => void,
): Promise<void> {
  const { kvs } = await store.etcd.list(store.keys.pools);
  const farm = new Map<string, PoolDefinition>();
  for (const kv of kvs) {
    const definition = parseRecord<PoolDefinition>(kv.value);
    if (definition !== undefined) farm.set(definition.name, definition);
  }
  const local = pools.list();
  for (const pool of local) {
    if (pool.type !== "shared" || farm.has(pool.name)) continue;
    const definition: PoolDefinition = {
      name: pool.name,
      type: pool.type,
      path: pool.path,
      ...(pool.autostart ? { autostart: true } : {}),
    };
    await store.createPool(definition);
  }
  for (const definition of farm.values()) {
    if (local.some((p) => p.name === definition.name)) continue;
    try {
      pools.define(definition);
      log(`defined the farm's shared pool '${definition.name}' (${definition.path})`);
      if (definition.autostart) pools.start(definition.name);
    } catch (error) {
      log(`farm pool '${definition.name}': ${(error as Error).message}`);
    }
  }
}
