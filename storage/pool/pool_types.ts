/**
 * The pool and volume types of the storage layer, as the API speaks them:
 * manager/api_types.ts re-exports them, so the pool manager never imports the toolstack.
 *
 * @module
 */

import type { ImageFormat } from "../../common/enums.ts";

/** Storage pools (storage/pool/): where volumes live. */
export type PoolType = "dir" | "btrfs" | "block" | "shared";

export interface PoolDefinition {
  name: string;
  type: PoolType;
  /** dir, btrfs, shared: a directory; block: a block device (a disk whose partitions are volumes). */
  path: string;
  autostart?: boolean;
}

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

export interface VolumeCreateRequest {
  name: string;
  format?: ImageFormat;
  /** Bytes or a string with units ("10G"). */
  size?: number | string;
  preallocation?: "off" | "metadata" | "full";
  /** Make a linked clone: a qcow2 overlay on this volume of the same pool. */
  backingVolume?: string;
  /** Import: copy this host file into the pool (converting to `format`). */
  import?: string;
}

export interface VolumeActionRequest {
  /** resize: new size; shrinking needs `force`. */
  size?: number | string;
  force?: boolean;
  /** clone, snapshot, convert, export: the new volume's or snapshot's name, or the export path. */
  target?: string;
  /** clone: "full" (reflink where possible) or "linked" (qcow2 overlay). */
  mode?: "full" | "linked";
  /** convert, export: the format to write. */
  format?: ImageFormat;
  /** rollback, delete-snapshot: which snapshot. */
  snapshot?: string;
  /**
   * rollback in a dir or shared pool: delete the snapshots taken after `snapshot` (they
   * are states on the line being abandoned). Without it such a rollback is refused with
   * their names.
   */
  dropNewer?: boolean;
}

/** What runs on a volume now; for copies (clone, import, convert, export), how far it is. */
export interface VolumeProgress {
  busy: boolean;
  /** The operation: "clone", "create", "convert"... */
  operation?: string;
  doneBytes?: number;
  totalBytes?: number;
}
