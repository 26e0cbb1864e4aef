/**
 * Storage pools and their volumes: dir, btrfs, block (GPT) and shared pools; raw and qcow2
 * volumes with clones, snapshots, rollback and commit.
 *
 * ```ts
 * import { PoolManager } from "./storage/pool/mod.ts";
 * const pools = new PoolManager({ stateDir: "/var/lib/denovisor" });
 * pools.define({ name: "default", type: "dir", path: "/var/lib/denovisor/images" });
 * pools.build("default");
 * pools.start("default");
 * await pools.createVolume("default", { name: "web", format: "qcow2", size: "10G" });
 * ```
 *
 * @module
 */

export { PoolManager, type PoolManagerOptions, VOLUME_ACTIONS } from "./pool_manager.ts";
export { PoolError, type PoolErrorCode } from "./pool_error.ts";
export type { ProgressOptions, VolumeUser } from "./volume_context.ts";
export type { ProgressCallback } from "./file_clone.ts";
