/**
 * Files that are replaced whole or not at all: write a temporary file beside the target,
 * fsync it, rename it over the target and fsync the directory, so that a crash at any
 * point leaves either the old or the new version on disk, never a mix or nothing.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Writes `text` to `path` atomically and durably, with `mode` (default 0600). */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${Deno.pid}-${crypto.randomUUID()}`);
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode });
    try {
      const bytes = new TextEncoder().encode(text);
      // FsFile.write may write less than asked: loop until all of it is written.
      for (let offset = 0; offset < bytes.length;) {
        offset += await file.write(bytes.subarray(offset));
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
}

/** Removes `path` (if present) and makes the removal durable. */
export async function removeFileDurably(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** fsyncs a directory, so that a rename or unlink in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
