/**
 * The intent journal of multi-step volume operations. Before the first step that can
 * leave a volume half-changed, the operation writes an intent record, JSON written
 * atomically to `<stateDir>/pools/<pool>.volumes/<volume>.intent` (not `.json`, which
 * would collide with the record of a volume named `<volume>.intent`); it removes it when
 * done. When the pool starts (or the daemon starts with the pool active), every record
 * left by a crash is rolled forward or back from what is on disk, so no volume vanishes
 * and no snapshot is lost. Only external snapshots need it today: their rename and the
 * overlay's placement are two steps.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { readJsonFile, removeDurably, syncDirectory, writeJsonAtomic } from "./state_file.ts";
import { pathExists } from "./pool_error.ts";
import { renameNoReplace } from "../../ffi/rename.ts";
import type { VolumeMetaStore } from "./volume_meta.ts";

/** An external snapshot being taken: `path` moves to `snapshotPath`, `overlay` takes its place. */
export interface SnapshotIntent {
  op: "snapshot";
  volume: string;
  snapshot: string;
  /** The volume's image. */
  path: string;
  /** Where the volume's image moves (read-only). */
  snapshotPath: string;
  /** The new overlay, built under this temporary name before the moves. */
  overlay: string;
  createdAt: string;
}

const INTENT = ".intent";

/** The intent file of `volume`. */
function intentPath(meta: VolumeMetaStore, volume: string): string {
  return join(meta.dir, `${volume}${INTENT}`);
}

/** Records `intent` durably before its first step. */
export function beginIntent(meta: VolumeMetaStore, intent: SnapshotIntent): void {
  writeJsonAtomic(intentPath(meta, intent.volume), intent);
}

/** Forgets the intent of `volume`: the operation is complete (or undone). */
export function endIntent(meta: VolumeMetaStore, volume: string): void {
  removeDurably(intentPath(meta, volume));
}

/**
 * Rolls every recorded intent of the pool forward or back. Returns one line per
 * recovered operation, for the daemon's log.
 */
export function recoverIntents(meta: VolumeMetaStore): string[] {
  const done: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(meta.dir)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return done;
    throw error;
  }
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith(INTENT)) continue;
    const intent = readJsonFile<SnapshotIntent>(join(meta.dir, entry.name));
    if (intent?.op !== "snapshot" || typeof intent.volume !== "string") continue;
    done.push(recoverSnapshot(meta, intent));
    endIntent(meta, intent.volume);
  }
  return done;
}

function recoverSnapshot(meta: VolumeMetaStore, intent: SnapshotIntent): string {
  const { path, snapshotPath, overlay, volume, snapshot } = intent;
  const moved = pathExists(snapshotPath);
  if (!moved) {
    // The volume never moved: undo the overlay, if it was made.
    if (pathExists(overlay)) Deno.removeSync(overlay);
    return `volume '${volume}': snapshot '${snapshot}' was not taken (rolled back)`;
  }
  if (!pathExists(path)) {
    if (pathExists(overlay)) {
      renameNoReplace(overlay, path); // roll forward: the overlay was complete
    } else {
      renameNoReplace(snapshotPath, path); // roll back: no overlay to put in place
      syncDirectory(dirname(path));
      syncDirectory(dirname(snapshotPath));
      return `volume '${volume}': snapshot '${snapshot}' was not taken (rolled back)`;
    }
  }
  Deno.chmodSync(snapshotPath, 0o400);
  syncDirectory(dirname(path));
  syncDirectory(dirname(snapshotPath));
  const record = meta.get(volume);
  if (!record.snapshots.some((s) => s.name === snapshot)) {
    record.snapshots.push({ name: snapshot, path: snapshotPath, createdAt: intent.createdAt });
    meta.set(volume, record);
  }
  return `volume '${volume}': snapshot '${snapshot}' completed after an interruption`;
}
