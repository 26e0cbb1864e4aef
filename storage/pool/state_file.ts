/**
 * Small JSON state files written atomically: a reader (or a crash) sees the old file or
 * the new one, never half of one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/**
 * Writes `value` as JSON to `path`: a temporary file beside it, fsync, rename over the
 * old file, then fsync the directory so the rename itself is durable.
 */
export function writeJsonAtomic(path: string, value: unknown): void {
  const dir = dirname(path);
  Deno.mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${Deno.pid}.${crypto.randomUUID()}.tmp`);
  const file = Deno.openSync(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    file.syncSync();
  } catch (error) {
    file.close();
    Deno.removeSync(temp);
    throw error;
  }
  file.close();
  Deno.renameSync(temp, path);
  syncDirectory(dir);
}

/** Removes `path` (if present) and makes the removal durable. */
export function removeDurably(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    // Nothing to remove, so nothing to make durable (its directory may not exist either).
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  syncDirectory(dirname(path));
}

/** fsync on a directory: makes renames and unlinks in it durable. */
export function syncDirectory(dir: string): void {
  const handle = Deno.openSync(dir, { read: true });
  try {
    handle.syncSync();
  } finally {
    handle.close();
  }
}

/** The parsed JSON in `path`, or undefined when there is no such file. */
export function readJsonFile<T>(path: string): T | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(
      `State file ${path} is not valid JSON (${(error as Error).message}); restore or remove it`,
    );
  }
}
