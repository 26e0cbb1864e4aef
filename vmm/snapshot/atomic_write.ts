/**
 * Writes a file so that a crash at any point leaves either no file or the old one, never
 * a file that looks complete: a temporary name beside the target (mode 0600 whatever the
 * umask), fsync, rename, fsync of the directory.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Creates `path` through `fill(file)`; on any failure the temporary file is removed. */
export async function writeAtomically(
  path: string,
  fill: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.partial-${Deno.pid}`);
  const file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
  try {
    await Deno.chmod(temporary, 0o600);
    await fill(file);
    await file.sync();
    file.close();
    await Deno.rename(temporary, path);
  } catch (error) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await Deno.open(directory, { read: true }).catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch { /* some file systems refuse fsync on a directory; the rename still stands */ }
  handle.close();
}
