/**
 * `dir` and `shared` pools: a directory of image files. A `shared` pool is a directory on
 * storage several hosts mount at the same path (NFS, CephFS, a cluster filesystem); it
 * only starts when its path is a mount point, so that a missing mount never lets volumes
 * land on the local disk where the other hosts cannot see them.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { PoolType } from "./pool_types.ts";
import type { PoolBackend, PoolCapacity } from "./backend.ts";
import { filesystemUsage, pathExists, PoolError } from "./pool_error.ts";
import { isVolumeName } from "./volume_name.ts";

/** Hidden directory of a file pool holding external snapshot images, one folder per volume. */
export const SNAPSHOT_DIR = ".snapshots";

/** A directory of image files. */
export class DirPool implements PoolBackend {
  readonly type: PoolType = "dir";
  readonly fileBased = true;
  readonly shared: boolean = false;
  readonly formats = ["raw", "qcow2"] as const;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  build(): void {
    makePrivateDirectory(this.path);
  }

  start(): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.path);
    } catch {
      throw new PoolError(
        "conflict",
        `Pool directory ${this.path} does not exist; build the pool first`,
      );
    }
    if (!info.isDirectory) throw new PoolError("invalid", `${this.path} is not a directory`);
  }

  destroy(): void {
    removePoolDirectory(this.path);
  }

  capacity(): PoolCapacity {
    return directoryCapacity(this.path);
  }

  listVolumes(): string[] {
    return this.#entries().volumes;
  }

  /** Entries that are not volumes: not regular files (FIFOs, directories...) or not named as one. */
  skippedEntries(): string[] {
    return this.#entries().skipped;
  }

  #entries(): { volumes: string[]; skipped: string[] } {
    const volumes: string[] = [];
    const skipped: string[] = [];
    for (const entry of Deno.readDirSync(this.path)) {
      if (entry.name.startsWith(".")) continue;
      if (entry.isFile && isVolumeName(entry.name)) volumes.push(entry.name);
      else skipped.push(entry.name);
    }
    return { volumes: volumes.sort(), skipped: skipped.sort() };
  }

  volumePath(name: string): string {
    return join(this.path, name);
  }

  allocate(name: string): string {
    return this.volumePath(name);
  }

  release(name: string): void {
    try {
      Deno.removeSync(this.volumePath(name));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** A directory on storage every host of a cluster mounts at the same path. */
export class SharedPool extends DirPool {
  override readonly type: PoolType = "shared";
  override readonly shared = true;

  override build(): void {
    if (!pathExists(this.path)) {
      throw new PoolError(
        "conflict",
        `${this.path} does not exist; mount the shared storage there first (a shared pool ` +
          `never creates its mount point)`,
      );
    }
  }

  override start(): void {
    super.start();
    if (!isMountPoint(this.path)) {
      throw new PoolError(
        "conflict",
        `${this.path} is not a mount point; mount the shared storage there, then start the pool`,
      );
    }
  }
}

/**
 * Creates `path` (and missing parents) mode 0700 whatever the umask: volumes are private.
 * An existing directory keeps its mode (an administrator chose it).
 */
export function makePrivateDirectory(path: string): void {
  if (pathExists(path)) return;
  Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
  Deno.chmodSync(path, 0o700);
}

/** Whether `path` is the root of a mounted filesystem (per /proc/self/mountinfo). */
export function isMountPoint(path: string): boolean {
  const real = Deno.realPathSync(resolve(path));
  if (real === "/") return true;
  const mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
  for (const line of mountinfo.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (point === real) return true;
  }
  return dirname(real) === real;
}

/**
 * Removes an emptied pool directory (and its empty snapshot directory); a directory that
 * still holds volumes or snapshots is refused with a conflict.
 */
export function removePoolDirectory(path: string): void {
  if (!pathExists(path)) return;
  try {
    Deno.removeSync(join(path, SNAPSHOT_DIR));
  } catch {
    // Absent, or holds snapshots: the removal below then reports the directory not empty.
  }
  try {
    Deno.removeSync(path);
  } catch (error) {
    throw new PoolError(
      "conflict",
      `Cannot delete ${path}: ${(error as Error).message}; delete its volumes first`,
    );
  }
}

/** Size, use and free space of the filesystem holding a directory pool. */
export function directoryCapacity(path: string): PoolCapacity {
  const usage = filesystemUsage(path);
  return { capacity: usage.capacity, allocation: usage.used, available: usage.available };
}
