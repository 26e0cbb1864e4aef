/**
 * `btrfs` pools: one subvolume per volume (the image file `disk` inside it), so a volume
 * snapshot is a btrfs subvolume snapshot: instant, sharing every extent, with no backing
 * chain. Rollback replaces the volume's subvolume with a writable snapshot of the chosen
 * read-only one. Snapshots live in `<pool>/.snapshots/<volume>/<snapshot>`.
 *
 * @module
 */

import { join } from "node:path";
import type { PoolType } from "./pool_types.ts";
import type { NativeSnapshots, PoolBackend, PoolCapacity } from "./backend.ts";
import {
  directoryCapacity,
  makePrivateDirectory,
  removePoolDirectory,
  SNAPSHOT_DIR,
} from "./dir_pool.ts";
import { isVolumeName } from "./volume_name.ts";
import { pathExists, PoolError, runTool } from "./pool_error.ts";

/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INODE = 256;

/** A directory on a btrfs filesystem whose volumes are subvolumes. */
export class BtrfsPool implements PoolBackend, NativeSnapshots {
  readonly type: PoolType = "btrfs";
  readonly fileBased = true;
  readonly shared = false;
  readonly formats = ["raw", "qcow2"] as const;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  get nativeSnapshots(): NativeSnapshots {
    return this;
  }

  build(): void {
    makePrivateDirectory(this.path);
    this.#requireBtrfs();
  }

  start(): void {
    if (!pathExists(this.path)) {
      throw new PoolError(
        "conflict",
        `Pool directory ${this.path} does not exist; build the pool first`,
      );
    }
    this.#requireBtrfs();
  }

  #requireBtrfs(): void {
    const type = runTool("stat", ["-f", "-c", "%T", this.path]).trim();
    if (type !== "btrfs") {
      throw new PoolError(
        "invalid",
        `${this.path} is on ${type}, not btrfs; mount a btrfs filesystem there or use a dir pool`,
      );
    }
  }

  destroy(): void {
    removePoolDirectory(this.path);
  }

  capacity(): PoolCapacity {
    return directoryCapacity(this.path);
  }

  listVolumes(): string[] {
    const names: string[] = [];
    for (const entry of Deno.readDirSync(this.path)) {
      if (!entry.isDirectory || entry.name.startsWith(".") || !isVolumeName(entry.name)) continue;
      const dir = join(this.path, entry.name);
      if (Deno.statSync(dir).ino === SUBVOLUME_ROOT_INODE && pathExists(join(dir, "disk"))) {
        names.push(entry.name);
      }
    }
    return names.sort();
  }

  volumePath(name: string): string {
    return join(this.path, name, "disk");
  }

  allocate(name: string): string {
    runTool("btrfs", ["subvolume", "create", join(this.path, name)]);
    return this.volumePath(name);
  }

  release(name: string): void {
    for (const snapshot of this.list(name)) this.delete(name, snapshot);
    try {
      Deno.removeSync(join(this.path, SNAPSHOT_DIR, name));
    } catch {
      // No snapshot folder.
    }
    if (pathExists(join(this.path, name))) {
      runTool("btrfs", ["subvolume", "delete", join(this.path, name)]);
    }
  }

  #snapshotPath(volume: string, snapshot: string): string {
    return join(this.path, SNAPSHOT_DIR, volume, snapshot);
  }

  create(volume: string, snapshot: string): void {
    makePrivateDirectory(join(this.path, SNAPSHOT_DIR));
    makePrivateDirectory(join(this.path, SNAPSHOT_DIR, volume));
    runTool("btrfs", [
      "subvolume",
      "snapshot",
      "-r",
      join(this.path, volume),
      this.#snapshotPath(volume, snapshot),
    ]);
  }

  rollback(volume: string, snapshot: string): void {
    // Snapshot first, then swap: if anything fails midway the volume is still there.
    const fresh = join(this.path, `.${volume}.rollback`);
    if (pathExists(fresh)) runTool("btrfs", ["subvolume", "delete", fresh]);
    runTool("btrfs", ["subvolume", "snapshot", this.#snapshotPath(volume, snapshot), fresh]);
    runTool("btrfs", ["subvolume", "delete", join(this.path, volume)]);
    Deno.renameSync(fresh, join(this.path, volume));
  }

  delete(volume: string, snapshot: string): void {
    runTool("btrfs", ["subvolume", "delete", this.#snapshotPath(volume, snapshot)]);
  }

  list(volume: string): string[] {
    const dir = join(this.path, SNAPSHOT_DIR, volume);
    if (!pathExists(dir)) return [];
    return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  }
}
