/**
 * The pool and volume types of the storage layer, as the API speaks them:
 * manager/api_types.ts re-exports them, so the pool manager never imports the toolstack.
 *
 * @module
 */

import type { ImageFormat } from "../../common/enums.ts";
import type { Static } from "../../common/schema.ts";
import type * as schema from "./pool_schema.ts";

/** Storage pools (storage/pool/): where volumes live. */
export type PoolType = typeof schema.POOL_TYPES[number];

/**
 * A pool as the user defines it: name, type, path (dir, btrfs, shared: a directory; block: a
 * block device whose partitions are the volumes), autostart. Its schema: pool_schema.ts.
 */
export type PoolDefinition = Static<typeof schema.PoolDefinition>;

export interface PoolInfo extends PoolDefinition {
  state: "inactive" | "active" | "building";
  /** Set for storage every host of a cluster mounts (type "shared"): migration needs no copy. */
  shared?: boolean;
  capacityBytes?: number;
  allocationBytes?: number;
  availableBytes?: number;
  volumes: number;
  /** Entries of the pool that are not volumes (bad names, FIFOs, directories): skipped. */
  skipped?: string[];
}

export interface VolumeInfo {
  pool: string;
  name: string;
  path: string;
  format: ImageFormat;
  virtualSize: number;
  allocatedSize: number;
  /** Backing chain, nearest first (paths), for an overlay. */
  backingChain: string[];
  /** External snapshots of this volume, oldest first. */
  snapshots: string[];
  /** The domain using the volume, if any. */
  usedBy?: string;
}

/** POST /v1/pools/{pool}/volumes (pool_schema.ts has each field's description). */
export type VolumeCreateRequest = Static<typeof schema.VolumeCreateRequest>;

/** POST /v1/pools/{pool}/volumes/{vol}/{action} (pool_schema.ts). */
export type VolumeActionRequest = Static<typeof schema.VolumeActionRequest>;

/** What runs on a volume now; for copies (clone, import, convert, export), how far it is. */
export interface VolumeProgress {
  busy: boolean;
  /** The operation: "clone", "create", "convert"... */
  operation?: string;
  doneBytes?: number;
  totalBytes?: number;
}
