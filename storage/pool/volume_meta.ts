/**
 * What the pool manager remembers about a volume beyond its image: the snapshots, oldest
 * first, in `<stateDir>/pools/<pool>.volumes/<volume>.json`, written atomically.
 *
 * @module
 */

import { join } from "node:path";
import { readJsonFile, removeDurably, writeJsonAtomic } from "./state_file.ts";

/** One snapshot of a volume. */
export interface SnapshotRecord {
  name: string;
  /** External snapshots: the read-only image holding the volume as it was. */
  path?: string;
  /** ISO 8601. */
  createdAt: string;
}

/** The recorded state of one volume. */
export interface VolumeMeta {
  snapshots: SnapshotRecord[];
}

/** The metadata files of one pool's volumes. */
export class VolumeMetaStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #path(volume: string): string {
    return join(this.dir, `${volume}.json`);
  }

  /** The volume's record; an empty one when none was written. */
  get(volume: string): VolumeMeta {
    const meta = readJsonFile<VolumeMeta>(this.#path(volume));
    return { snapshots: Array.isArray(meta?.snapshots) ? meta.snapshots : [] };
  }

  set(volume: string, meta: VolumeMeta): void {
    writeJsonAtomic(this.#path(volume), meta);
  }

  remove(volume: string): void {
    removeDurably(this.#path(volume));
  }

  /** Forgets every volume (the pool is undefined). */
  removeAll(): void {
    removeDurably(this.dir);
  }
}
