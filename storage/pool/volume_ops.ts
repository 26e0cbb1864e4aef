/**
 * Volume operations that make, change and remove volumes: create (new, linked or
 * imported), delete, wipe, resize, clone and convert. How images are copied in and out
 * is in volume_copy.ts, snapshots in snapshots.ts.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import type { VolumeActionRequest, VolumeCreateRequest, VolumeInfo } from "./pool_types.ts";
import { checkPoolRequest, VolumeCreateRequest as VolumeCreateSchema } from "./pool_schema.ts";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../../ffi/libc_symbols.ts";
import { type CloneMethod, zeroOutDevice } from "./file_clone.ts";
import {
  allocateAndFill,
  checkFormat,
  copyImage,
  importVolume,
  requireFormat,
} from "./volume_copy.ts";
import { pathExists, PoolError } from "./pool_error.ts";
import { syncDirectory } from "./state_file.ts";
import {
  checkName,
  describeVolume,
  type ProgressOptions,
  refuseChange,
  refuseInUse,
  requireAbsent,
  requireVolume,
  sizeOf,
  type VolumeContext,
  withImageLock,
} from "./volume_context.ts";
import {
  convertVolumeImage,
  createVolumeImage,
  probeFormat,
  resizeVolumeImage,
  volumeImageInfo,
} from "./volume_image.ts";

/** Creates a volume: empty, a linked clone of `backingVolume`, or imported from a host file. */
export async function createVolume(
  ctx: VolumeContext,
  body: unknown,
  options: ProgressOptions = {},
): Promise<VolumeInfo> {
  const request = checkCreateRequest(body);
  const name = request.name;
  requireAbsent(ctx, name);
  const format = request.format ??
    (request.backingVolume ? "qcow2" : request.import ? probeFormat(request.import) : "raw");
  requireFormat(ctx, format);
  if (request.preallocation && !["off", "metadata", "full"].includes(request.preallocation)) {
    throw new PoolError("invalid", `preallocation: use off, metadata or full`);
  }
  if (request.import !== undefined) {
    return await importVolume(ctx, name, request.import, format, options);
  }
  if (request.backingVolume !== undefined) {
    const base = checkName(request.backingVolume, "backingVolume");
    const basePath = requireVolume(ctx, base);
    if (!ctx.backend.fileBased || format !== "qcow2") {
      throw new PoolError(
        "invalid",
        "A linked clone is a qcow2 volume in a dir, btrfs or shared pool",
      );
    }
    refuseInUse(ctx, base);
    const baseInfo = volumeImageInfo(basePath);
    const size = request.size === undefined ? baseInfo.virtualSize : sizeOf(request.size, "size");
    return allocateAndFill(ctx, name, size, (path) =>
      createVolumeImage(path, {
        format: "qcow2",
        size,
        backingFile: basePath,
        backingFormat: baseInfo.format,
      }));
  }
  if (request.size === undefined) throw new PoolError("invalid", "size: a new volume needs a size");
  const size = sizeOf(request.size, "size");
  return allocateAndFill(ctx, name, size, (path) => {
    if (ctx.backend.fileBased) {
      createVolumeImage(path, { format, size, preallocation: request.preallocation });
    }
  });
}

function checkCreateRequest(body: unknown): VolumeCreateRequest {
  const request: VolumeCreateRequest = checkPoolRequest(
    VolumeCreateSchema,
    body,
    "A new volume (name, format, size...)",
  );
  checkName(request.name, "name");
  if (request.format !== undefined) checkFormat(request.format, "format");
  if (
    request.import !== undefined &&
    (typeof request.import !== "string" || !isAbsolute(request.import))
  ) {
    throw new PoolError("invalid", "import: give the absolute path of the file to import");
  }
  return request;
}

/** Deletes a volume, its snapshots and its record. */
export function deleteVolume(ctx: VolumeContext, name: string): void {
  requireVolume(ctx, name);
  refuseChange(ctx, name, "delete");
  if (ctx.backend.fileBased) {
    withImageLock(ctx, name, "write", () => removeVolume(ctx, name));
  } else {
    // The kernel refuses to delete a partition that is open: check the lock, then delete.
    withImageLock(ctx, name, "write", () => {});
    removeVolume(ctx, name);
  }
}

function removeVolume(ctx: VolumeContext, name: string): void {
  for (const snapshot of ctx.meta.get(name).snapshots) {
    if (snapshot.path) Deno.removeSync(snapshot.path);
  }
  if (ctx.backend.fileBased) {
    try {
      Deno.removeSync(join(ctx.poolPath, ".snapshots", name));
    } catch {
      // No external snapshots folder.
    }
  }
  ctx.backend.release(name);
  ctx.meta.remove(name);
}

/** Erases the data the volume holds; it keeps its size, format and backing file. */
export function wipeVolume(ctx: VolumeContext, name: string): VolumeInfo {
  const path = requireVolume(ctx, name);
  refuseChange(ctx, name, "wipe");
  const info = volumeImageInfo(path);
  withImageLock(ctx, name, "write", () => wipeImage(ctx, name, path, info));
  return describeVolume(ctx, name);
}

function wipeImage(
  ctx: VolumeContext,
  name: string,
  path: string,
  info: ReturnType<typeof volumeImageInfo>,
): void {
  if (!ctx.backend.fileBased) {
    const fd = openFile(path, O_RDWR | O_CLOEXEC);
    try {
      zeroOutDevice(fd, 0, info.virtualSize, path);
    } finally {
      closeFd(fd);
    }
  } else if (info.format === "raw") {
    // Truncating to zero frees every block; growing back leaves one hole that reads as zeroes.
    Deno.truncateSync(path, 0);
    Deno.truncateSync(path, info.virtualSize);
  } else {
    const fresh = join(dirname(path), `.${name}.wipe`);
    if (pathExists(fresh)) Deno.removeSync(fresh);
    createVolumeImage(fresh, {
      format: "qcow2",
      size: info.virtualSize,
      backingFile: info.backingChain[0],
    });
    Deno.renameSync(fresh, path);
    syncDirectory(dirname(path));
  }
}

/** Grows a volume; shrinking needs `force`. */
export function resizeVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
): VolumeInfo {
  const path = requireVolume(ctx, name);
  if (request.size === undefined) throw new PoolError("invalid", "size: give the new size");
  const size = sizeOf(request.size, "size");
  refuseChange(ctx, name, "resize");
  const current = volumeImageInfo(path).virtualSize;
  if (size < current && request.force !== true) {
    throw new PoolError(
      "conflict",
      `Shrinking volume '${name}' from ${current} to ${size} bytes destroys the data past the new end; pass force (--shrink) if you mean it`,
    );
  }
  // The image layer's resize takes the image's lock itself; a partition is locked here.
  if (ctx.backend.resizeStorage) {
    withImageLock(ctx, name, "write", () => {}); // an open partition cannot be resized
    ctx.backend.resizeStorage(name, size);
  } else resizeVolumeImage(path, size, { shrink: request.force === true });
  return describeVolume(ctx, name);
}

/** Clones `name` as `target`: a full copy (reflinked where possible) or a linked overlay. */
export async function cloneVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
  options: ProgressOptions = {},
): Promise<VolumeInfo & { method?: CloneMethod | "convert" }> {
  const source = requireVolume(ctx, name);
  const target = checkName(request.target, "target");
  requireAbsent(ctx, target);
  const mode = request.mode ?? "full";
  if (mode !== "full" && mode !== "linked") {
    throw new PoolError("invalid", "mode: use full or linked");
  }
  refuseInUse(ctx, name);
  if (mode === "linked") {
    return await createVolume(ctx, { name: target, format: "qcow2", backingVolume: name });
  }
  const info = volumeImageInfo(source);
  const format = request.format ?? info.format;
  checkFormat(format, "format");
  requireFormat(ctx, format);
  let method: CloneMethod | "convert" = "copy";
  const volume = await allocateAndFill(ctx, target, info.virtualSize, async (path) => {
    method = await copyImage(
      ctx,
      source,
      info.format,
      info.backingChain.length > 0,
      path,
      format,
      options,
    );
  });
  return { ...volume, method };
}

/** Rewrites the volume in the other format (flattening a linked clone). */
export async function convertVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
  options: ProgressOptions = {},
): Promise<VolumeInfo> {
  const path = requireVolume(ctx, name);
  const format = checkFormat(request.format, "format");
  requireFormat(ctx, format);
  refuseChange(ctx, name, "convert");
  const snapshots = ctx.meta.get(name).snapshots;
  if (snapshots.length > 0) {
    throw new PoolError(
      "conflict",
      `Volume '${name}' has ${snapshots.length} snapshots; commit or delete them before converting`,
    );
  }
  const info = volumeImageInfo(path);
  if (info.format === format && info.backingChain.length === 0) return describeVolume(ctx, name);
  const temp = join(dirname(path), `.${name}.convert`);
  if (pathExists(temp)) Deno.removeSync(temp);
  try {
    // Readers (the conversion itself) share the lock; no VM may write meanwhile.
    await withImageLock(ctx, name, "read", async () => {
      await convertVolumeImage(path, temp, { format, onProgress: options.onProgress });
      Deno.renameSync(temp, path);
      syncDirectory(dirname(path));
    });
  } finally {
    if (pathExists(temp)) Deno.removeSync(temp);
  }
  return describeVolume(ctx, name);
}
