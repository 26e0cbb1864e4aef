/**
 * Volume operations that copy images into, within and out of a pool: every new volume is
 * built under a temporary name and renamed into place once whole (create, clone, import),
 * imports are confined by the pool's backing policy, and exports are written the same way
 * beside their target.
 *
 * @module
 */

import { basename, dirname, isAbsolute, join } from "node:path";
import { renameNoReplace } from "../../ffi/rename.ts";
import { BackingRefused } from "../image_probe.ts";
import { faultPoint } from "./fault.ts";
import type { VolumeActionRequest, VolumeInfo } from "./pool_types.ts";
import { cloneFile, type CloneMethod, copyBytes } from "./file_clone.ts";
import { deviceSize } from "./gpt.ts";
import { pathExists, PoolError } from "./pool_error.ts";
import { syncDirectory } from "./state_file.ts";
import {
  describeVolume,
  type ProgressOptions,
  refuseInUse,
  requireVolume,
  type VolumeContext,
  withImageLock,
} from "./volume_context.ts";
import { convertVolumeImage, type ImageFormat, volumeImageInfo } from "./volume_image.ts";

/** The format named by a request: raw or qcow2, else `invalid`. */
export function checkFormat(format: unknown, what: string): ImageFormat {
  if (format !== "raw" && format !== "qcow2") {
    throw new PoolError("invalid", `${what}: ${JSON.stringify(format)} is not raw or qcow2`);
  }
  return format;
}

/** Throws `invalid` unless the pool holds volumes of `format`. */
export function requireFormat(ctx: VolumeContext, format: ImageFormat): void {
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
export async function allocateAndFill(
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

/** Imports the host image `source` (its chain flattened) as volume `name`. */
export async function importVolume(
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
export async function copyImage(
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
