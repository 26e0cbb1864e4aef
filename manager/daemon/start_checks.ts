/**
 * The clash check made just before a domain starts: its disks against those of the
 * domains running now (defining a domain allows clashes with stopped domains, as libvirt
 * and xl do; starting it does not).
 *
 * @module
 */

import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { BackingRefused, imageInfo } from "../../storage/image.ts";
import { checkBootFits } from "../../core/boot/boot_check.ts";
import { BootImageError } from "../../core/boot/boot_error.ts";
import type { VmmConfig } from "../../vmm/vmm_config.ts";
import type { DiskDefinition, DomainDefinition } from "../api_types.ts";
import { checkConflicts, DefinitionError } from "../domain/definition.ts";
import type { DiskPathResolver, OtherDomain } from "../domain/conflicts.ts";
import type { VolumeLookup } from "../domain/resolve.ts";
import type { DomainEntry } from "./domain_entry.ts";
import { ApiError } from "../../common/http/mod.ts";

/** checkConflicts with its errors as 400s. */
export function conflicts(
  definition: DomainDefinition,
  others: OtherDomain[],
  resolveDiskPath?: DiskPathResolver,
): void {
  try {
    checkConflicts(definition, others, resolveDiskPath);
  } catch (error) {
    if (error instanceof DefinitionError) throw new ApiError("invalid", error.message);
    throw error;
  }
}

/**
 * Throws a 400 when `definition` clashes with a running domain. Disks are compared by the
 * real path of their image, so one file named by a path in one domain and as a pool
 * volume (or through a symlink) in another is seen as the same disk.
 */
export async function conflictsWithRunning(
  definition: DomainDefinition,
  entries: ReadonlyMap<string, DomainEntry>,
  volumes: VolumeLookup,
): Promise<void> {
  const others = [...entries.values()]
    .filter((e) => e.definition.name !== definition.name)
    .map((e) => ({ definition: e.run?.record.definition ?? e.definition, running: !!e.run }));
  const disks = [definition, ...others.filter((o) => o.running).map((o) => o.definition)]
    .flatMap((d) => d.disks ?? []);
  const realPaths = new Map<DiskDefinition, string>();
  for (const disk of disks) {
    const path = await imagePath(disk, volumes);
    if (path !== undefined) realPaths.set(disk, path);
  }
  conflicts(definition, others, (disk) => realPaths.get(disk));
}

/** The canonical path of a disk's image; undefined when it cannot be found (start reports that). */
async function imagePath(disk: DiskDefinition, volumes: VolumeLookup): Promise<string | undefined> {
  try {
    const path = disk.path ??
      (disk.volume === undefined
        ? undefined
        : (await volumes(disk.pool ?? "default", disk.volume)).path);
    return path === undefined ? undefined : realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Throws a 400 when the domain's kernel (and initrd) would not boot in its memory: the
 * boot layout is computed as the VMM will compute it (core/boot/boot_check.ts), so "memory
 * below the kernel's needs" is refused here rather than by a VMM that dies at start.
 */
export async function bootFits(config: VmmConfig): Promise<void> {
  if (config.boot.kind !== "linux") return;
  const { kernel, initrd, cmdline } = config.boot;
  try {
    checkBootFits(
      {
        kernel: await Deno.readFile(kernel),
        initrd: initrd === undefined ? undefined : await Deno.readFile(initrd),
        cmdline,
        cpus: config.vcpus,
        kernelPath: kernel,
      },
      config.memoryBytes,
    );
  } catch (error) {
    if (!(error instanceof BootImageError)) throw error;
    // The boot code speaks to `denovisor run` users; a definition's field is `memory`.
    throw new ApiError("invalid", `boot: ${error.messageFor("memory")}`);
  }
}

/**
 * Throws a 403 when a qcow2 disk's backing chain leaves the places a backing file may be:
 * the directory of the disk's own image, the pools, and the directories the daemon was
 * told to allow (`--backing-dir`). A crafted image whose backing file is /etc/shadow or a
 * host block device must never become a guest's disk through the daemon.
 */
export function backingConfined(config: VmmConfig, directories: readonly string[]): void {
  for (const [index, disk] of config.disks.entries()) {
    if (disk.format === "raw") continue;
    try {
      imageInfo(disk.path, {
        format: disk.format,
        backingPolicy: {
          allowedDirectories: [dirname(realpathSync(disk.path)), ...directories],
        },
      });
    } catch (error) {
      if (!(error instanceof BackingRefused)) throw error;
      throw new ApiError("forbidden", `disks[${index}]: ${error.message}`, { cause: error });
    }
  }
}
