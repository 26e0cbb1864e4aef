/**
 * Volume operations that make, copy, change and remove volumes: create (new, linked or
 * imported), delete, wipe, resize, clone, convert and export. Snapshots are in
 * snapshots.ts.
 *
 * @module
 */

import { basename, dirname, isAbsolute, join } from "node:path";
import { renameNoReplace } from "../../ffi/rename.ts";
import { faultPoint } from "./fault.ts";
import { BackingRefused } from "../image_probe.ts";
import type { VolumeActionRequest, VolumeCreateRequest, VolumeInfo } from "./pool_types.ts";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../../ffi/libc_symbols.ts";
import { cloneFile, type CloneMethod, copyBytes, zeroOutDevice } from "./file_clone.ts";
import { deviceSize } from "./gpt.ts";
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
  type ImageFormat,
  probeFormat,
  resizeVolumeImage,
  volumeImageInfo,
} from "./volume_image.ts";

const CREATE_FIELDS = new Set([
  "name",
  "format",
  "size",
  "preallocation",
  "backingVolume",
  "import",
]);

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
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new PoolError("invalid", "The request body must be a JSON object with a volume 'name'");
  }
  for (const key of Object.keys(body)) {
    if (!CREATE_FIELDS.has(key)) {
      throw new PoolError(
        "invalid",
        `Unknown field '${key}'; known: ${[...CREATE_FIELDS].join(", ")}`,
      );
    }
  }
  const request = body as VolumeCreateRequest;
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

function checkFormat(format: unknown, what: string): ImageFormat {
  if (format !== "raw" && format !== "qcow2") {
    throw new PoolError("invalid", `${what}: ${JSON.stringify(format)} is not raw or qcow2`);
  }
  return format;
}

function requireFormat(ctx: VolumeContext, format: ImageFormat): void {
  if (!ctx.backend.formats.includes(format)) {
    throw new PoolError(
      "invalid",
      `A ${ctx.backend.type} pool holds ${ctx.backend.formats.join(" or ")} volumes, not ${format}`,
    );
  }
}

/**
 * Allocates storage for `name`, fills it, and releases it again if filling fails. In a
 * file pool the image is built under a temporary name (`.<name>.create`, removed by the
 * next pool start if a crash interrupts the copy), synced, and renamed into place (never
 * over an existing file): a volume is listed only once it is whole.
 */
async function allocateAndFill(
  ctx: VolumeContext,
  name: string,
  size: number,
  fill: (path: string) => void | Promise<unknown>,
): Promise<VolumeInfo> {
  const path = ctx.backend.allocate(name, size);
  const building = ctx.backend.fileBased ? temporaryOf(path, "create") : path;
  try {
    if (building !== path && pathExists(building)) Deno.removeSync(building);
    await fill(building);
    if (building !== path) {
      syncFile(building);
      faultPoint("clone-before-rename");
      renameNoReplace(building, path);
      syncDirectory(dirname(path));
    }
  } catch (error) {
    if (building !== path && pathExists(building)) Deno.removeSync(building);
    ctx.backend.release(name);
    throw error;
  }
  ctx.meta.set(name, { snapshots: [] });
  return describeVolume(ctx, name);
}

/** The temporary name beside `path` that an operation builds its new image under. */
export function temporaryOf(path: string, purpose: string): string {
  return join(dirname(path), `.${basename(path)}.${purpose}`);
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function syncFile(path: string): void {
  const file = Deno.openSync(path, { read: true });
  try {
    file.syncSync();
  } finally {
    file.close();
  }
}

async function importVolume(
  ctx: VolumeContext,
  name: string,
  source: string,
  format: ImageFormat,
  options: ProgressOptions,
): Promise<VolumeInfo> {
  try {
    return await importImage(ctx, name, source, format, options);
  } catch (error) {
    if (error instanceof BackingRefused) {
      throw new PoolError("forbidden", `import: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

async function importImage(
  ctx: VolumeContext,
  name: string,
  source: string,
  format: ImageFormat,
  options: ProgressOptions,
): Promise<VolumeInfo> {
  if (!pathExists(source)) throw new PoolError("not_found", `import: ${source} does not exist`);
  const info = volumeImageInfo(source, ctx.backingPolicy);
  return await allocateAndFill(ctx, name, info.virtualSize, async (path) => {
    await copyImage(ctx, source, info.format, info.backingChain.length > 0, path, format, options);
  });
}

/**
 * Copies the image `source` (flattening its chain) to `target`, which is a new file in a
 * file pool, else an allocated partition or device: a reflink when formats match and the
 * source stands alone.
 */
async function copyImage(
  ctx: VolumeContext,
  source: string,
  sourceFormat: ImageFormat,
  sourceHasBacking: boolean,
  target: string,
  format: ImageFormat,
  options: ProgressOptions,
): Promise<CloneMethod | "convert"> {
  const targetIsFile = ctx.backend.fileBased || !Deno.statSync(target).isBlockDevice;
  if (!targetIsFile) {
    if (sourceFormat !== "raw") {
      throw new PoolError(
        "invalid",
        `${source} is ${sourceFormat}; a block pool takes raw images only`,
      );
    }
    const size = deviceSize(source);
    await copyBytes(source, target, { size, sparse: true, create: false, ...options });
    return "copy";
  }
  const sourceIsDevice = Deno.statSync(source).isBlockDevice;
  if (format === sourceFormat && !sourceHasBacking && !sourceIsDevice) {
    return await cloneFile(source, target, options);
  }
  if (sourceIsDevice && format === "raw") {
    await copyBytes(source, target, {
      size: deviceSize(source),
      sparse: true,
      create: true,
      ...options,
    });
    return "copy";
  }
  await convertVolumeImage(source, target, {
    format,
    onProgress: options.onProgress,
    backingPolicy: ctx.backingPolicy,
  });
  return "convert";
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

/** Writes the volume's contents to the host file `request.target` (which must not exist). */
export async function exportVolume(
  ctx: VolumeContext,
  name: string,
  request: VolumeActionRequest,
  options: ProgressOptions = {},
): Promise<VolumeInfo> {
  const path = requireVolume(ctx, name);
  const target = request.target;
  if (typeof target !== "string" || !isAbsolute(target)) {
    throw new PoolError("invalid", "target: give the absolute path of the file to write");
  }
  if (pathExists(target)) {
    throw new PoolError("conflict", `${target} exists; remove it or pick another path`);
  }
  if (!isDirectory(dirname(target))) {
    throw new PoolError(
      "invalid",
      `target: ${dirname(target)} is not a directory; create it first`,
    );
  }
  // Written under a temporary name, synced, then renamed (never over a file that appeared
  // meanwhile): an interrupted export leaves no half-written target.
  const building = temporaryOf(target, "export");
  if (pathExists(building)) {
    throw new PoolError("conflict", `${building} exists (an interrupted export?); remove it first`);
  }
  refuseInUse(ctx, name);
  const info = volumeImageInfo(path);
  const format = request.format === undefined ? info.format : checkFormat(request.format, "format");
  const exportCtx = { ...ctx, backend: { ...ctx.backend, fileBased: true } };
  // Read under the image lock: no VM writes while the copy is taken.
  await withImageLock(ctx, name, "read", async () => {
    try {
      await copyImage(
        exportCtx,
        path,
        info.format,
        info.backingChain.length > 0,
        building,
        format,
        options,
      );
      syncFile(building);
      renameNoReplace(building, target);
      syncDirectory(dirname(target));
    } catch (error) {
      if (pathExists(building)) Deno.removeSync(building);
      throw error;
    }
  });
  return describeVolume(ctx, name);
}
