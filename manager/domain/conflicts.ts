/**
 * Checks that a validated definition does not clash with the other domains the daemon
 * knows: names, uuids and MACs must be unique among all of them; a named tap belongs to
 * one running domain; a disk image may be shared between running domains only when
 * every user opens it read-only.
 *
 * @module
 */

import type { DiskDefinition, DomainDefinition } from "../api_types.ts";
import { DomainConflictError } from "./definition_error.ts";

/** Another domain as `checkConflicts` sees it. */
export interface OtherDomain {
  /** Its normalized definition (from `validateDefinition`). */
  definition: DomainDefinition;
  /** Whether it runs (or is paused): only then do its disks count as in use. */
  running: boolean;
}

/**
 * Where a disk's image is, as an absolute path, for disks whose path the definition alone
 * does not tell (pool volumes); `undefined` when unknown (then pool/volume is compared).
 */
export type DiskPathResolver = (disk: DiskDefinition) => string | undefined;

function diskKey(disk: DiskDefinition, resolvePath?: DiskPathResolver): string {
  const resolved = resolvePath?.(disk) ?? disk.path;
  return resolved !== undefined ? `path:${resolved}` : `volume:${disk.pool}/${disk.volume}`;
}

function describeDisk(disk: DiskDefinition, resolvePath?: DiskPathResolver): string {
  if (disk.path !== undefined) return disk.path;
  const resolved = resolvePath?.(disk);
  const volume = `volume '${disk.volume}' of pool '${disk.pool}'`;
  return resolved === undefined ? volume : `${volume} (${resolved})`;
}

/**
 * Throws `DomainConflictError` (a `DefinitionError` whose `.path` names the field and
 * `.other` the other domain) for the first clash of `definition` with `others`:
 * - a name or uuid another domain has;
 * - a MAC address another domain's NIC has;
 * - a named tap a running domain uses;
 * - a disk image a running domain uses read-write, or one this domain would use
 *   read-write while a running domain uses it at all. Call it with `running` set as it
 *   will be: at define time (where disk clashes with stopped domains are allowed, as in
 *   libvirt and xl) and again just before starting.
 *
 * `others` must not contain the domain itself (leave it out when editing).
 */
export function checkConflicts(
  definition: DomainDefinition,
  others: readonly OtherDomain[],
  resolveDiskPath?: DiskPathResolver,
): void {
  for (const { definition: other } of others) {
    if (other.name === definition.name) {
      throw new DomainConflictError(
        "name",
        `a domain named '${definition.name}' already exists; choose another name or edit that one`,
        other.name,
      );
    }
    if (definition.uuid !== undefined && other.uuid?.toLowerCase() === definition.uuid) {
      throw new DomainConflictError(
        "uuid",
        `${definition.uuid} is already the uuid of domain '${other.name}'; leave uuid out to get a new one`,
        other.name,
      );
    }
  }
  for (const [index, nic] of (definition.nics ?? []).entries()) {
    if (nic.mac === undefined) continue;
    for (const { definition: other } of others) {
      const otherIndex = (other.nics ?? []).findIndex((o) => o.mac?.toLowerCase() === nic.mac);
      if (otherIndex >= 0) {
        throw new DomainConflictError(
          `nics[${index}].mac`,
          `${nic.mac} is already the MAC of domain '${other.name}' (nics[${otherIndex}]); leave mac out to get a generated one`,
          other.name,
        );
      }
    }
  }
  for (const [index, nic] of (definition.nics ?? []).entries()) {
    if (nic.tap === undefined || nic.tap === "auto") continue;
    for (const { definition: other, running } of others) {
      const otherIndex = (other.nics ?? []).findIndex((o) => o.tap === nic.tap);
      if (running && otherIndex >= 0) {
        throw new DomainConflictError(
          `nics[${index}].tap`,
          `tap ${nic.tap} is in use by running domain '${other.name}' (nics[${otherIndex}]); stop that domain or use tap "auto"`,
          other.name,
        );
      }
    }
  }
  for (const [index, disk] of (definition.disks ?? []).entries()) {
    const key = diskKey(disk, resolveDiskPath);
    for (const { definition: other, running } of others) {
      if (!running) continue;
      const theirs = (other.disks ?? []).findIndex((d) => diskKey(d, resolveDiskPath) === key);
      if (theirs < 0) continue;
      const theirDisk = other.disks![theirs];
      if (disk.readOnly && theirDisk.readOnly) continue;
      const how = theirDisk.readOnly
        ? "read-only, and this domain would write to it"
        : "read-write";
      throw new DomainConflictError(
        `disks[${index}].${disk.path !== undefined ? "path" : "volume"}`,
        `${
          describeDisk(disk, resolveDiskPath)
        } is in use by running domain '${other.name}' (disks[${theirs}], ${how}); stop that domain or give a copy${
          theirDisk.readOnly ? ", or make this disk readOnly" : ""
        }`,
        other.name,
      );
    }
  }
}
