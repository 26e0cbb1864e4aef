/**
 * The intent journal of multi-step volume operations. Before the first step that can
 * leave a volume half-changed, the operation writes an intent record, JSON written
 * atomically to `<stateDir>/pools/<pool>.volumes/<volume>.intent` (not `.json`, which
 * would collide with the record of a volume named `<volume>.intent`); it removes it when
 * done. When the pool starts (or the daemon starts with the pool active), every record
 * left by a crash is rolled forward or back from what is on disk, so no volume vanishes
 * and no snapshot is lost. External snapshots need it: taking one is a rename and an
 * overlay's placement; deleting one is a commit (or a flattening) and a rename; rolling
 * back is a rename, then the newer snapshots go.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { commitImage } from "../image_ops/commit.ts";
import { imageInfo } from "../image.ts";
import { readJsonFile, removeDurably, syncDirectory, writeJsonAtomic } from "./state_file.ts";
import { pathExists, PoolError } from "./pool_error.ts";
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

/**
 * An external snapshot being deleted: `child` (the next snapshot or the volume) is
 * committed into `own`, which then takes `child`'s path; or, when `flatten`, `child` is
 * rewritten standalone (under `.<child>.flatten`) and `own` removed.
 */
export interface DeleteSnapshotIntent {
  op: "delete-snapshot";
  volume: string;
  snapshot: string;
  own: string;
  child: string;
  childIsVolume: boolean;
  flatten: boolean;
}

/**
 * A rollback: the fresh overlay `fresh` (complete when the intent is written) replaces the
 * volume's image, then the snapshots named in `dropped` (newer than the target) go.
 */
export interface RollbackIntent {
  op: "rollback";
  volume: string;
  snapshot: string;
  fresh: string;
  dropped: { name: string; path: string }[];
}

/** Any recorded intent. */
export type Intent = SnapshotIntent | DeleteSnapshotIntent | RollbackIntent;

/** Where a flattened snapshot image is built before it takes `child`'s place. */
export function flattenTemporary(child: string): string {
  return join(dirname(child), `.${basename(child)}.flatten`);
}

/** The intent file of `volume`. */
function intentPath(meta: VolumeMetaStore, volume: string): string {
  return join(meta.dir, `${volume}${INTENT}`);
}

/** Records `intent` durably before its first step. */
export function beginIntent(meta: VolumeMetaStore, intent: Intent): void {
  refusePending(meta, intent.volume);
  writeJsonAtomic(intentPath(meta, intent.volume), intent);
}

/**
 * Throws `conflict` when `volume` has an operation a crash interrupted: its temporaries
 * are evidence the next start needs, so nothing may touch them first.
 */
export function refusePending(meta: VolumeMetaStore, volume: string): void {
  const pending = readJsonFile<Intent>(intentPath(meta, volume));
  if (pending !== undefined) {
    throw new PoolError(
      "conflict",
      `Volume '${volume}' has an unfinished ${pending.op} (of '${pending.snapshot}'); stop and start the pool to finish it first`,
    );
  }
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
    const intent = readJsonFile<Intent>(join(meta.dir, entry.name));
    if (typeof intent?.volume !== "string") continue;
    try {
      if (intent.op === "snapshot") done.push(recoverSnapshot(meta, intent));
      else if (intent.op === "delete-snapshot") done.push(recoverSnapshotDeletion(meta, intent));
      else if (intent.op === "rollback") done.push(recoverRollback(meta, intent));
      else continue;
    } catch (error) {
      // Kept for the next start (e.g. a running VM holds the image now).
      done.push(
        `volume '${intent.volume}': an interrupted ${intent.op} could not be finished yet: ${
          (error as Error).message
        }`,
      );
      continue;
    }
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

/**
 * Finishes deleting a snapshot: every crash point rolls forward (the user asked for the
 * deletion, and committing again is idempotent: what is still in `child` is copied once
 * more, what was already copied is in `own`).
 */
function recoverSnapshotDeletion(meta: VolumeMetaStore, intent: DeleteSnapshotIntent): string {
  const { own, child, volume, snapshot } = intent;
  if (intent.flatten) {
    const temp = flattenTemporary(child);
    if (pathExists(temp)) {
      Deno.chmodSync(temp, 0o400);
      Deno.renameSync(temp, child);
    } else if (imageInfo(child).backingFile !== undefined) {
      // The flattened image never replaced the child: nothing changed.
      return `volume '${volume}': snapshot '${snapshot}' was not deleted (rolled back)`;
    }
    if (pathExists(own)) Deno.removeSync(own);
  } else if (pathExists(own)) {
    Deno.chmodSync(own, 0o600);
    commitImage(child);
    if (!intent.childIsVolume) Deno.chmodSync(own, 0o400);
    Deno.renameSync(own, child);
  }
  syncDirectory(dirname(own));
  syncDirectory(dirname(child));
  const record = meta.get(volume);
  const kept = record.snapshots.filter((s) => s.name !== snapshot);
  if (kept.length !== record.snapshots.length) meta.set(volume, { ...record, snapshots: kept });
  return `volume '${volume}': snapshot '${snapshot}' deleted after an interruption`;
}

/**
 * A rollback whose fresh overlay still has its temporary name never replaced the volume:
 * nothing changed (the temporary is removed). Otherwise it did: the newer snapshots go.
 */
function recoverRollback(meta: VolumeMetaStore, intent: RollbackIntent): string {
  const { volume, snapshot } = intent;
  if (pathExists(intent.fresh)) {
    Deno.removeSync(intent.fresh);
    return `volume '${volume}': the rollback to '${snapshot}' did not happen (rolled back)`;
  }
  const record = meta.get(volume);
  const dropped = new Set(intent.dropped.map((d) => d.name));
  const kept = record.snapshots.filter((s) => !dropped.has(s.name));
  if (kept.length !== record.snapshots.length) meta.set(volume, { ...record, snapshots: kept });
  for (const { path } of intent.dropped) if (pathExists(path)) Deno.removeSync(path);
  return `volume '${volume}': the rollback to '${snapshot}' completed after an interruption`;
}
