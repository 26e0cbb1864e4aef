/**
 * What each pool type provides: where a volume's bytes live and how storage is made and
 * released. The pool manager (pool_manager.ts) does everything common on top.
 *
 * @module
 */

import type { PoolType } from "./pool_types.ts";
import type { ImageFormat } from "./volume_image.ts";

/** Capacity figures of a pool, in bytes. */
export interface PoolCapacity {
  capacity: number;
  allocation: number;
  available: number;
}

/** One storage technology behind a pool. */
export interface PoolBackend {
  readonly type: PoolType;
  /** Volumes are files (not partitions): they may be qcow2, sparse, reflinked. */
  readonly fileBased: boolean;
  /** Storage several hosts see at the same path (migration needs no copy). */
  readonly shared: boolean;
  /** Formats a volume of this pool may have. */
  readonly formats: readonly ImageFormat[];
  /** Makes the storage: a directory, or a GPT label (only on a blank device unless `overwrite`). */
  build(options: { overwrite?: boolean }): void;
  /** Checks the storage is there and usable; throws a PoolError saying what is missing. */
  start(): void;
  /** Removes the (empty) storage: the directory, or the label. */
  destroy(): void;
  capacity(): PoolCapacity;
  /** Names of the volumes present, sorted. */
  listVolumes(): string[];
  /** Entries of the pool that are not volumes (bad names, FIFOs, directories), skipped. */
  skippedEntries?(): string[];
  /** Where volume `name` is (or will be) accessed. */
  volumePath(name: string): string;
  /**
   * Prepares room for a new volume of `size` bytes and returns its path. File pools return a
   * path not yet created; the block pool a zeroed partition.
   */
  allocate(name: string, size: number): string;
  /** Frees volume `name`'s storage (file, subvolume with its snapshots, partition). */
  release(name: string): void;
  /** Block pools: grows or shrinks the partition. File pools leave it to the image layer. */
  resizeStorage?(name: string, size: number): void;
  /** Native snapshots (btrfs): instant, no backing chain. */
  readonly nativeSnapshots?: NativeSnapshots;
}

/** Whole-volume snapshots the storage itself keeps. */
export interface NativeSnapshots {
  create(volume: string, snapshot: string): void;
  /** Replaces the volume with a writable copy of the snapshot. */
  rollback(volume: string, snapshot: string): void;
  delete(volume: string, snapshot: string): void;
  /** Names of the volume's snapshots. */
  list(volume: string): string[];
}
