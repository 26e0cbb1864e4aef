/**
 * The view of one active pool that the volume operations work on, and the checks they
 * share: names, sizes, existence, "in use" and "is the base of".
 *
 * @module
 */

import type { VolumeInfo } from "./pool_types.ts";
import { parseSize } from "../../common/units.ts";
import { closeFd } from "../../ffi/libc.ts";
import { DiskError } from "../disk.ts";
import { fileIdentity, openImageFile } from "../image_file.ts";
import type { BackingPolicy } from "../image_probe.ts";
import type { PoolBackend } from "./backend.ts";
import { PoolError } from "./pool_error.ts";
import type { VolumeMetaStore } from "./volume_meta.ts";
import { isVolumeName } from "./volume_name.ts";
import { volumeImageInfo } from "./volume_image.ts";
import type { ProgressCallback } from "./file_clone.ts";

/** Names the domain using the image at `path`, if one does. */
export type VolumeUser = (path: string) => string | undefined;

/** Options of the long volume operations. */
export interface ProgressOptions {
  onProgress?: ProgressCallback;
}

/** One active pool as the volume operations see it. */
export interface VolumeContext {
  pool: string;
  poolPath: string;
  backend: PoolBackend;
  meta: VolumeMetaStore;
  volumeUser: VolumeUser;
  /**
   * Where backing files of images entering the pool (imports, copies) may live: the
   * pool's directory and the directories the daemon allows.
   */
  backingPolicy: BackingPolicy;
}

/** Larger sizes are typos (qcow2 itself stops at 2^61 bytes; nothing here needs more). */
const MAX_SIZE = 2 ** 50;

/** Throws `invalid` unless `name` is a safe volume or snapshot name. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || !isVolumeName(name)) {
    throw new PoolError(
      "invalid",
      `${what}: ${
        JSON.stringify(name)
      } is not a valid name; use 1-64 letters, digits, '.', '_', '+' or '-', not starting with '.' or '-'`,
    );
  }
  return name;
}

/** A size in bytes from a number or a string with units; `invalid` when absurd. */
export function sizeOf(value: unknown, what: string): number {
  let bytes: number;
  if (typeof value === "number") bytes = value;
  else if (typeof value === "string") {
    try {
      bytes = parseSize(value, what);
    } catch (error) {
      throw new PoolError("invalid", (error as Error).message);
    }
  } else throw new PoolError("invalid", `${what}: give a size in bytes or with a unit ("10G")`);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_SIZE) {
    throw new PoolError("invalid", `${what}: ${value} is not a size between 1 byte and 1 PiB`);
  }
  return bytes;
}

/** Throws `not_found` unless the volume exists. */
export function requireVolume(ctx: VolumeContext, name: string): string {
  checkName(name, "volume");
  if (!ctx.backend.listVolumes().includes(name)) {
    throw new PoolError(
      "not_found",
      `No volume '${name}' in pool '${ctx.pool}'; 'denovisor vol list ${ctx.pool}' shows them`,
    );
  }
  return ctx.backend.volumePath(name);
}

/** Throws `conflict` if `name` exists already. */
export function requireAbsent(ctx: VolumeContext, name: string): void {
  checkName(name, "volume");
  if (ctx.backend.listVolumes().includes(name)) {
    throw new PoolError("conflict", `Volume '${name}' already exists in pool '${ctx.pool}'`);
  }
}

/** Throws `conflict` naming the domain when a domain uses the volume. */
export function refuseInUse(ctx: VolumeContext, name: string): void {
  const user = ctx.volumeUser(ctx.backend.volumePath(name));
  if (user !== undefined) {
    throw new PoolError(
      "busy",
      `Volume '${name}' is in use by domain '${user}'; shut it down first`,
    );
  }
}

/**
 * Runs `fn` holding the image lock of volume `name` (storage/image_lock.ts, QEMU's
 * layout): `write` excludes every other user, `read` every writer. The lock belongs to the
 * file, not its name, so a VM using the volume through a hardlink or another path, or
 * QEMU, is seen too. Throws `busy` when the image is in use.
 */
export function withImageLock<T>(
  ctx: VolumeContext,
  name: string,
  mode: "write" | "read",
  fn: () => T,
): T {
  const path = ctx.backend.volumePath(name);
  let fd: number;
  try {
    fd = openImageFile(path, { readOnly: mode === "read" }).fd;
  } catch (error) {
    if (error instanceof DiskError && error.code === "busy") {
      throw new PoolError(
        "busy",
        `Volume '${name}' is in use by another process (a running VM or QEMU); shut it down first`,
        { cause: error },
      );
    }
    throw error;
  }
  let result: T;
  try {
    result = fn();
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => closeFd(fd)) as T;
  closeFd(fd);
  return result;
}

/**
 * The volumes of the pool whose backing chain runs through `name` (its image or
 * snapshots), by file identity: a chain that names the base by another path (a symlink, a
 * hardlink) depends on it all the same.
 */
export function dependentsOf(ctx: VolumeContext, name: string): string[] {
  if (!ctx.backend.fileBased) return [];
  const files = new Set(
    [
      ctx.backend.volumePath(name),
      ...ctx.meta.get(name).snapshots.flatMap((s) => (s.path ? [s.path] : [])),
    ].map(identityOf),
  );
  files.delete(undefined);
  const dependents: string[] = [];
  for (const other of ctx.backend.listVolumes()) {
    if (other === name) continue;
    const chain = safeChain(ctx.backend.volumePath(other));
    if (chain.some((path) => files.has(identityOf(path)))) dependents.push(other);
  }
  return dependents;
}

function identityOf(path: string): string | undefined {
  try {
    return fileIdentity(path);
  } catch {
    return undefined; // gone: nothing depends on it through this name
  }
}

function safeChain(path: string): string[] {
  try {
    return volumeImageInfo(path).backingChain;
  } catch {
    return [];
  }
}

/** Throws `conflict` if the volume is in use or other volumes are built on it. */
export function refuseChange(ctx: VolumeContext, name: string, action: string): void {
  refuseInUse(ctx, name);
  const dependents = dependentsOf(ctx, name);
  if (dependents.length > 0) {
    throw new PoolError(
      "conflict",
      `Cannot ${action} volume '${name}': it is the base of ${
        dependents.map((d) => `'${d}'`).join(", ")
      }; delete or flatten (convert) those first`,
    );
  }
}

/** The API's view of one volume. */
export function describeVolume(ctx: VolumeContext, name: string): VolumeInfo {
  const path = requireVolume(ctx, name);
  const info = volumeImageInfo(path);
  const usedBy = ctx.volumeUser(path);
  return {
    pool: ctx.pool,
    name,
    path,
    format: info.format,
    virtualSize: info.virtualSize,
    allocatedSize: info.actualSize,
    backingChain: info.backingChain,
    snapshots: ctx.meta.get(name).snapshots.map((s) => s.name),
    ...(usedBy === undefined ? {} : { usedBy }),
  };
}
