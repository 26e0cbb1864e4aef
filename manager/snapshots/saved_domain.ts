/**
 * `<state file>.domain.json`: what `denovisor save` writes beside a state file so that
 * `restore FILE` can define the domain again. The state file holds the VMM config (paths
 * resolved, for the machine); this file holds what the daemon needs besides: the domain
 * definition as the user wrote it (pool volumes by name), whether it was persistent, and
 * the identity and size of every disk at the save, so that a restore onto disks that
 * changed since is refused (unless forced).
 *
 * It is written after the state file and by rename, so a save cut short never leaves a
 * pair that restore would accept. It is read as untrusted input: a file that does not
 * parse, or that belongs to another state file, is refused with a 400.
 *
 * @module
 */

import { basename } from "node:path";
import type { DomainDefinition } from "../api_types.ts";
import { writeFileAtomic } from "../store/atomic_file.ts";
import { DefinitionError, validateDefinition } from "../domain/definition.ts";
import { fileIdentity, imageInfo } from "../../storage/image.ts";
import { ApiError } from "../../common/http/mod.ts";

/** The `format` field's value: says what the file is to someone who opens it. */
export const SAVED_DOMAIN_FORMAT = "denovisor-saved-domain";
/** The layout version this build writes and reads. */
export const SAVED_DOMAIN_VERSION = 1;
/** Files bigger than this are not a definition (the definition limit is 1 MiB). */
const MAX_BYTES = 2 * 1024 * 1024;

/** One disk as it was at the save. */
export interface SavedDisk {
  /** vda, vdb... */
  id: string;
  path: string;
  /** Device and inode ("dev:ino"), so a replaced image is noticed. */
  identity: string;
  virtualSize: number;
}

/** The file's content. */
export interface SavedDomain {
  format: typeof SAVED_DOMAIN_FORMAT;
  version: number;
  /** The state file this belongs to (its base name). */
  stateFile: string;
  /** The state document's `createdAt`: pairs this file with that very state. */
  stateCreatedAt: string;
  savedAt: string;
  persistent: boolean;
  definition: DomainDefinition;
  disks: SavedDisk[];
}

/** The definition file of a state file. */
export function savedDomainPath(stateFile: string): string {
  return `${stateFile}.domain.json`;
}

/** Identity and size of the writable images at `paths` (id by position). */
export function describeDisks(disks: { id: string; path: string }[]): SavedDisk[] {
  return disks.map(({ id, path }) => ({
    id,
    path,
    identity: fileIdentity(path),
    virtualSize: imageInfo(path).virtualSize,
  }));
}

/** Writes `<stateFile>.domain.json` atomically. */
export async function writeSavedDomain(
  stateFile: string,
  content: Omit<SavedDomain, "format" | "version" | "stateFile">,
): Promise<string> {
  const path = savedDomainPath(stateFile);
  const saved: SavedDomain = {
    format: SAVED_DOMAIN_FORMAT,
    version: SAVED_DOMAIN_VERSION,
    stateFile: basename(stateFile),
    ...content,
  };
  await writeFileAtomic(path, JSON.stringify(saved, null, 2) + "\n");
  return path;
}

/** Reads and checks `<stateFile>.domain.json`; every refusal is a 400 naming the file. */
export async function readSavedDomain(stateFile: string): Promise<SavedDomain> {
  const path = savedDomainPath(stateFile);
  const refuse = (why: string) => new ApiError("invalid", `${path}: ${why}`);
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw refuse("not a regular file");
    if (info.size > MAX_BYTES) throw refuse(`${info.size} bytes is too big for a definition`);
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw refuse(
      error instanceof Deno.errors.NotFound
        ? "missing; restore needs the definition 'denovisor save' writes beside the state " +
          "file (a save that did not finish leaves none)"
        : (error as Error).message,
    );
  }
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw refuse(`not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw refuse("expected a JSON object");
  }
  if (value.format !== SAVED_DOMAIN_FORMAT) {
    throw refuse(`format: expected "${SAVED_DOMAIN_FORMAT}"`);
  }
  if (value.version !== SAVED_DOMAIN_VERSION) {
    throw refuse(`version: ${JSON.stringify(value.version)} is not ${SAVED_DOMAIN_VERSION}`);
  }
  if (value.stateFile !== basename(stateFile)) {
    throw refuse(
      `stateFile: it belongs to ${JSON.stringify(value.stateFile)}, not ${basename(stateFile)}; ` +
        `keep each state file with its own definition file`,
    );
  }
  if (typeof value.persistent !== "boolean") throw refuse("persistent: expected true or false");
  if (typeof value.savedAt !== "string") throw refuse("savedAt: expected a date");
  if (typeof value.stateCreatedAt !== "string") throw refuse("stateCreatedAt: expected a date");
  let definition: DomainDefinition;
  try {
    definition = validateDefinition(value.definition);
  } catch (error) {
    if (error instanceof DefinitionError) throw refuse(`definition: ${error.message}`);
    throw error;
  }
  if (!Array.isArray(value.disks) || value.disks.length > 256) {
    throw refuse("disks: expected a list");
  }
  const disks = value.disks.map((disk: unknown, index: number): SavedDisk => {
    const d = disk as Record<string, unknown>;
    if (
      typeof d?.id !== "string" || typeof d.path !== "string" || typeof d.identity !== "string" ||
      typeof d.virtualSize !== "number"
    ) {
      throw refuse(`disks[${index}]: expected id, path, identity and virtualSize`);
    }
    return { id: d.id, path: d.path, identity: d.identity, virtualSize: d.virtualSize };
  });
  return {
    format: SAVED_DOMAIN_FORMAT,
    version: SAVED_DOMAIN_VERSION,
    stateFile: basename(stateFile),
    savedAt: value.savedAt,
    stateCreatedAt: value.stateCreatedAt,
    persistent: value.persistent,
    definition,
    disks,
  };
}

/**
 * Why the disks differ from the save (one line per disk), or an empty list when every
 * disk is the same file with the same size.
 */
export function diskChanges(saved: readonly SavedDisk[]): string[] {
  const changes: string[] = [];
  for (const disk of saved) {
    let now: SavedDisk;
    try {
      [now] = describeDisks([disk]);
    } catch (error) {
      changes.push(`${disk.id} (${disk.path}) cannot be read: ${(error as Error).message}`);
      continue;
    }
    if (now.identity !== disk.identity) {
      changes.push(`${disk.id} (${disk.path}) is another file than at the save`);
    } else if (now.virtualSize !== disk.virtualSize) {
      changes.push(
        `${disk.id} (${disk.path}) was ${disk.virtualSize} bytes at the save, now ${now.virtualSize}`,
      );
    }
  }
  return changes;
}
