/**
 * Removes what interrupted operations leave in a file pool: images built under a
 * temporary name (`.<volume>.create`, `.snapshot`, `.rollback`, `.wipe`, `.convert`,
 * `.flatten`) and the image tools' temporaries (`.<file>.<purpose>-<pid>-<random>`, kept
 * while their process lives). Run when the pool starts, after the journal's recovery,
 * which may still need a `.snapshot` overlay.
 *
 * @module
 */

import { join } from "node:path";
import { SNAPSHOT_DIR } from "./dir_pool.ts";

const POOL_TEMPORARY = /^\..+\.(create|snapshot|rollback|wipe|convert|flatten)$/;
const TOOL_TEMPORARY = /^\..+\.[a-z-]+-(\d+)-[0-9a-z]+$/;

/** Removes the temporaries in the pool directory `path`; returns the paths removed. */
export function removeTemporaries(path: string): string[] {
  const removed: string[] = [];
  const directories = [path];
  for (const entry of readDir(path)) {
    // btrfs volumes are directories of their own; external snapshots live one level down.
    if (entry.isDirectory && !entry.name.startsWith(".")) directories.push(join(path, entry.name));
  }
  for (const entry of readDir(join(path, SNAPSHOT_DIR))) {
    if (entry.isDirectory) directories.push(join(path, SNAPSHOT_DIR, entry.name));
  }
  for (const directory of directories) {
    for (const entry of readDir(directory)) {
      if (!entry.isFile || !isTemporary(entry.name)) continue;
      const file = join(directory, entry.name);
      Deno.removeSync(file);
      removed.push(file);
    }
  }
  return removed;
}

function isTemporary(name: string): boolean {
  if (POOL_TEMPORARY.test(name)) return true;
  const tool = TOOL_TEMPORARY.exec(name);
  return tool !== null && !processLives(Number(tool[1]));
}

function processLives(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function readDir(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return [];
    }
    throw error;
  }
}
