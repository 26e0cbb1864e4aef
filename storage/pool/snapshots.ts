/**
 * Volume snapshots. A btrfs pool takes native subvolume snapshots. A dir or shared pool
 * takes external ones: the volume's current image moves (read-only) to
 * `<pool>/.snapshots/<volume>/<snapshot>` and a new qcow2 overlay on it takes the
 * volume's place, so the volume path never changes. Snapshots form one line, oldest
 * first; each snapshot image is an overlay on the one before.
 *
 * - rollback to S: a fresh empty overlay on S replaces the volume; snapshots newer than S
 *   are deleted (they were states after S, on the line being abandoned), and only when
 *   asked (`dropNewer`): else the rollback is refused with their names.
 * - delete S: the image after S (the next snapshot, or the volume itself) is committed
 *   into S, and S's image then takes that image's path, so the line stays valid.
 * - commit: deletes the newest snapshot that way: the volume's changes are merged into
 *   it and the volume is one image shorter.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { renameNoReplace } from "../../ffi/rename.ts";
import { faultPoint } from "./fault.ts";
import { beginIntent, endIntent, flattenTemporary, refusePending } from "./journal.ts";
import type { VolumeActionRequest, VolumeInfo } from "./pool_types.ts";
import { makePrivateDirectory } from "./dir_pool.ts";
import { pathExists, PoolError } from "./pool_error.ts";
import { syncDirectory } from "./state_file.ts";
import {
  checkName,
  describeVolume,
  refuseChange,
  requireVolume,
  type VolumeContext,
  withImageLock,
} from "./volume_context.ts";
import type { SnapshotRecord } from "./volume_meta.ts";
import {
  commitVolumeImage,
  convertVolumeImage,
  createVolumeImage,
  volumeImageInfo,
} from "./volume_image.ts";

/** Takes snapshot `request.target` of the volume. */
export function snapshotVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
): VolumeInfo {
  const path = requireVolume(ctx, name);
  const snapshot = checkName(request.target, "target");
  refuseChange(ctx, name, "snapshot");
  const meta = ctx.meta.get(name);
  if (meta.snapshots.some((s) => s.name === snapshot)) {
    throw new PoolError("conflict", `Volume '${name}' already has a snapshot '${snapshot}'`);
  }
  const record: SnapshotRecord = { name: snapshot, createdAt: new Date().toISOString() };
  const native = ctx.backend.nativeSnapshots;
  if (native) {
    native.create(name, snapshot);
  } else if (ctx.backend.fileBased) {
    record.path = takeExternalSnapshot(ctx, name, snapshot, path, record.createdAt);
  } else {
    throw new PoolError(
      "invalid",
      `A ${ctx.backend.type} pool cannot take snapshots; clone the volume instead`,
    );
  }
  if (native) {
    meta.snapshots.push(record);
    ctx.meta.set(name, meta);
  }
  return describeVolume(ctx, name);
}

/**
 * The volume's image moves (never over an existing file) to the snapshot folder and a new
 * overlay on it takes its place, under the volume's image lock and an intent record
 * (journal.ts) that the next pool start completes or undoes after a crash.
 */
function takeExternalSnapshot(
  ctx: VolumeContext,
  name: string,
  snapshot: string,
  path: string,
  createdAt: string,
): string {
  refusePending(ctx.meta, name);
  const snapshotPath = join(ctx.poolPath, ".snapshots", name, snapshot);
  makePrivateDirectory(dirname(dirname(snapshotPath)));
  makePrivateDirectory(dirname(snapshotPath));
  if (pathExists(snapshotPath)) {
    throw new PoolError(
      "conflict",
      `${snapshotPath} exists but is no snapshot of volume '${name}'; move it away first`,
    );
  }
  return withImageLock(ctx, name, "write", () => {
    const info = volumeImageInfo(path);
    const overlay = join(dirname(path), `.${basename(path)}.snapshot`);
    if (pathExists(overlay)) Deno.removeSync(overlay);
    beginIntent(ctx.meta, {
      op: "snapshot",
      volume: name,
      snapshot,
      path,
      snapshotPath,
      overlay,
      createdAt,
    });
    try {
      createVolumeImage(overlay, {
        format: "qcow2",
        size: info.virtualSize,
        backingFile: snapshotPath,
        backingFormat: info.format,
      });
      renameNoReplace(path, snapshotPath);
    } catch (error) {
      if (pathExists(overlay)) Deno.removeSync(overlay);
      endIntent(ctx.meta, name);
      throw error;
    }
    faultPoint("snapshot-after-rename");
    renameNoReplace(overlay, path);
    Deno.chmodSync(snapshotPath, 0o400);
    syncDirectory(dirname(snapshotPath));
    syncDirectory(dirname(path));
    const meta = ctx.meta.get(name);
    meta.snapshots.push({ name: snapshot, path: snapshotPath, createdAt });
    ctx.meta.set(name, meta);
    endIntent(ctx.meta, name);
    return snapshotPath;
  });
}

function findSnapshot(ctx: VolumeContext, name: string, snapshot: unknown) {
  const meta = ctx.meta.get(name);
  const index = meta.snapshots.findIndex((s) => s.name === snapshot);
  if (index < 0) {
    const known = meta.snapshots.map((s) => s.name).join(", ") || "none";
    throw new PoolError(
      "not_found",
      `Volume '${name}' has no snapshot ${JSON.stringify(snapshot)} (snapshots: ${known})`,
    );
  }
  return { meta, index };
}

/** Returns the volume to snapshot `request.snapshot`. */
export function rollbackVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
): VolumeInfo {
  const path = requireVolume(ctx, name);
  refuseChange(ctx, name, "roll back");
  const { meta, index } = findSnapshot(ctx, name, request.snapshot);
  const snapshot = meta.snapshots[index];
  const native = ctx.backend.nativeSnapshots;
  if (native) {
    native.rollback(name, snapshot.name);
    return describeVolume(ctx, name);
  }
  refusePending(ctx.meta, name);
  refuseDroppingNewer(name, snapshot.name, meta.snapshots.slice(index + 1), request.dropNewer);
  const info = volumeImageInfo(snapshot.path!);
  const fresh = join(dirname(path), `.${name}.rollback`);
  if (pathExists(fresh)) Deno.removeSync(fresh);
  // A VM writing the volume keeps it: replacing the file under it would lose its writes.
  withImageLock(ctx, name, "write", () => {
    createVolumeImage(fresh, {
      format: "qcow2",
      size: info.virtualSize,
      backingFile: snapshot.path,
      backingFormat: info.format,
    });
    const newer = meta.snapshots.slice(index + 1);
    beginIntent(ctx.meta, {
      op: "rollback",
      volume: name,
      snapshot: snapshot.name,
      fresh,
      dropped: newer.map((s) => ({ name: s.name, path: s.path! })),
    });
    Deno.renameSync(fresh, path);
    syncDirectory(dirname(path));
    faultPoint("rollback-after-rename");
    meta.snapshots.splice(index + 1);
    ctx.meta.set(name, meta);
    for (const dropped of newer) Deno.removeSync(dropped.path!);
    endIntent(ctx.meta, name);
  });
  return describeVolume(ctx, name);
}

/**
 * Refuses a rollback of `volume` to `snapshot` that would delete the later snapshots
 * `newer`, unless `dropNewer` says to: it names each one that would go.
 */
export function refuseDroppingNewer(
  volume: string,
  snapshot: string,
  newer: readonly { name: string }[],
  dropNewer: boolean | undefined,
): void {
  if (newer.length === 0 || dropNewer === true) return;
  const names = newer.map((each) => `'${each.name}'`).join(", ");
  throw new PoolError(
    "conflict",
    `Rolling volume '${volume}' back to '${snapshot}' deletes its later snapshot` +
      `${newer.length === 1 ? "" : "s"} ${names}; add --drop-newer (API: "dropNewer": true) ` +
      `to drop ${newer.length === 1 ? "it" : "them"}, or roll back to the newest one`,
  );
}

/** Deletes snapshot `request.snapshot`, keeping every later state intact. */
export async function deleteSnapshot(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
): Promise<VolumeInfo> {
  const path = requireVolume(ctx, name);
  refuseChange(ctx, name, "delete a snapshot of");
  const { meta, index } = findSnapshot(ctx, name, request.snapshot);
  const snapshot = meta.snapshots[index];
  const native = ctx.backend.nativeSnapshots;
  if (native) {
    native.delete(name, snapshot.name);
  } else {
    const childIsVolume = index === meta.snapshots.length - 1;
    const child = childIsVolume ? path : meta.snapshots[index + 1].path!;
    const own = snapshot.path!;
    // The child's child names the child's format (qcow2) in its header, so a raw image
    // cannot take the child's place: flatten the child into a standalone qcow2 instead.
    const flatten = !childIsVolume && volumeImageInfo(own).format !== "qcow2";
    // The commit opens `child` itself (locked); check first for a clear refusal.
    if (childIsVolume) withImageLock(ctx, name, "write", () => {});
    beginIntent(ctx.meta, {
      op: "delete-snapshot",
      volume: name,
      snapshot: snapshot.name,
      own,
      child,
      childIsVolume,
      flatten,
    });
    if (flatten) {
      const temp = flattenTemporary(child);
      if (pathExists(temp)) Deno.removeSync(temp);
      try {
        await convertVolumeImage(child, temp, { format: "qcow2" });
      } catch (error) {
        endIntent(ctx.meta, name); // nothing changed
        throw error;
      }
      faultPoint("delete-snapshot-after-copy");
      Deno.chmodSync(temp, 0o400);
      Deno.renameSync(temp, child);
      Deno.removeSync(own);
    } else {
      Deno.chmodSync(own, 0o600);
      try {
        await commitVolumeImage(child);
      } catch (error) {
        // Committed in part or not at all: the chain still reads as before; retry later.
        Deno.chmodSync(own, 0o400);
        endIntent(ctx.meta, name);
        throw error;
      }
      faultPoint("delete-snapshot-after-copy");
      if (!childIsVolume) Deno.chmodSync(own, 0o400);
      Deno.renameSync(own, child);
    }
    syncDirectory(dirname(own));
    syncDirectory(dirname(child));
  }
  meta.snapshots.splice(index, 1);
  ctx.meta.set(name, meta);
  if (!native) endIntent(ctx.meta, name);
  return describeVolume(ctx, name);
}

/** Merges the volume into its newest snapshot, which then stops being a snapshot. */
export async function commitVolume(ctx: VolumeContext, name: string): Promise<VolumeInfo> {
  const path = requireVolume(ctx, name);
  if (ctx.backend.nativeSnapshots) {
    throw new PoolError(
      "invalid",
      `btrfs snapshots share extents and leave no overlay to commit; delete the snapshot instead`,
    );
  }
  const snapshots = ctx.meta.get(name).snapshots;
  if (snapshots.length === 0) {
    const chain = volumeImageInfo(path).backingChain;
    throw new PoolError(
      "conflict",
      chain.length > 0
        ? `Volume '${name}' is a linked clone of ${
          chain[0]
        }; committing would change a base other volumes may share; convert it to flatten it instead`
        : `Volume '${name}' has no snapshot to commit into`,
    );
  }
  return await deleteSnapshot(ctx, name, { snapshot: snapshots[snapshots.length - 1].name });
}
