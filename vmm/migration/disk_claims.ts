/**
 * Shared storage, checked before any memory moves: the source names every disk by its
 * path, size and the SHA-256 of its first 4 KiB; the destination must see a file at the
 * same path with the same size and the same head. Device and inode numbers are per host
 * (one NFS export has other st_dev values on each client), so they cannot prove identity
 * across hosts; a path, a size and a header (the qcow2 header, or a raw image's boot
 * sector) catch the mistakes that matter: no shared mount, another image at the path, a
 * copy that has diverged.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DenovisorError } from "../../common/errors.ts";
import { handedFile } from "../../common/handed_descriptors.ts";
import { fstat } from "../../ffi/file_stat.ts";
import { pread } from "../../ffi/fs.ts";
import { closeFd, errno } from "../../ffi/libc.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { diskName } from "../device_names.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import type { DiskIdentityClaim } from "./start_request.ts";

/** The bytes hashed at the head of each image. */
export const HEAD_BYTES = 4096;

/** A disk the destination does not see as the source does. */
export class SharedStorageError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** The disks of a machine config, by device id. */
export function configDisks(config: VmmMachineConfig): Array<{ id: string; path: string }> {
  return config.disks.map((disk, index) => ({ id: disk.id ?? diskName(index), path: disk.path }));
}

/** This host's view of the image at `path`. */
export async function diskClaim(id: string, path: string): Promise<DiskIdentityClaim> {
  // A sandboxed VMM cannot open the path (its jail has no images): its launcher handed it
  // a descriptor of the image instead.
  const handed = handedFile(path);
  if (handed !== undefined) {
    try {
      return handedClaim(id, path, handed);
    } finally {
      closeFd(handed);
    }
  }
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    if (!info.isFile) throw new SharedStorageError(`Disk ${id}: ${path} is not a regular file`);
    const head = new Uint8Array(Math.min(HEAD_BYTES, info.size));
    let at = 0;
    while (at < head.length) {
      const read = await file.read(head.subarray(at));
      if (read === null) break;
      at += read;
    }
    const headSha256 = createHash("sha256").update(head.subarray(0, at)).digest("hex");
    return { id, path, size: info.size, headSha256 };
  } finally {
    file.close();
  }
}

function handedClaim(id: string, path: string, fd: number): DiskIdentityClaim {
  const info = fstat(fd);
  if (info.kind !== "file") {
    throw new SharedStorageError(`Disk ${id}: ${path} is not a regular file`);
  }
  const head = new Uint8Array(Math.min(HEAD_BYTES, info.size));
  let at = 0;
  while (at < head.length) {
    const read = pread(fd, head.subarray(at), at);
    if (read < 0) throw new SyscallError("pread", errno());
    if (read === 0) break;
    at += read;
  }
  const headSha256 = createHash("sha256").update(head.subarray(0, at)).digest("hex");
  return { id, path, size: info.size, headSha256 };
}

/**
 * Checks, on the destination, that every claimed disk is here as the source sees it and
 * that the claims name exactly the config's disks. The first difference is refused with
 * the disk named.
 */
export async function checkDiskClaims(
  claims: readonly DiskIdentityClaim[],
  disks: ReadonlyArray<{ id: string; path: string }>,
): Promise<void> {
  for (const disk of disks) {
    const claim = claims.find((c) => c.id === disk.id);
    if (!claim || claim.path !== disk.path) {
      throw new SharedStorageError(
        `Disk ${disk.id}: the source did not describe ${disk.path}; both hosts must use the same config`,
      );
    }
  }
  for (const claim of claims) {
    if (!disks.some((d) => d.id === claim.id)) {
      throw new SharedStorageError(`Disk ${claim.id}: not in the domain's config`);
    }
    let here: DiskIdentityClaim;
    try {
      here = await diskClaim(claim.id, claim.path);
    } catch (error) {
      if (error instanceof SharedStorageError) throw error;
      throw new SharedStorageError(
        `Disk ${claim.id}: ${claim.path} is not reachable on this host (${
          (error as Error).message
        }); live migration needs storage both hosts share`,
      );
    }
    if (here.size !== claim.size || here.headSha256 !== claim.headSha256) {
      throw new SharedStorageError(
        `Disk ${claim.id}: ${claim.path} here is not the source's image ` +
          `(${here.size} bytes here, ${claim.size} there, or another header); ` +
          `live migration needs the same image on shared storage`,
      );
    }
  }
}
