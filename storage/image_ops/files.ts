/**
 * File helpers for operations that build a new image beside an old one and swap it in.
 *
 * @module
 */

import { RawDisk } from "../raw_disk.ts";
import { ImageError } from "./image_access.ts";

/** The directory part of `path` ("." for a bare name). */
export function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/** A name for a temporary file in the same directory as `path` (so rename is atomic). */
export function temporarySibling(path: string, purpose: string): string {
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `${path.slice(0, slash + 1)}.${base}.${purpose}-${Deno.pid}-${random}`;
}

/**
 * Moves `from` over `to` atomically and makes the rename durable (fsync of the directory),
 * so after a crash `to` is either the old or the whole new file.
 */
export function replaceFile(from: string, to: string): void {
  Deno.renameSync(from, to);
  try {
    const directory = Deno.openSync(dirname(to), { read: true });
    try {
      directory.syncSync();
    } finally {
      directory.close();
    }
  } catch { /* some file systems cannot fsync a directory; the rename is still done */ }
}

/**
 * Throws if another process holds a lock on the image at `path` (a running VM): replacing
 * the file under it would leave the VM writing to an unlinked inode.
 */
export function refuseIfInUse(path: string): void {
  let disk: RawDisk;
  try {
    disk = RawDisk.open(path);
  } catch (error) {
    const message = (error as Error).message;
    throw new ImageError(
      /in use by another process/.test(message)
        ? `Cannot replace ${path}: it is in use by another process (a running VM?); stop that first`
        : `Cannot replace ${path}: ${message}`,
      { cause: error },
    );
  }
  disk.close();
}

/**
 * Builds a file under a temporary name beside `dst` with `build`, then renames it over
 * `dst`: an interrupted build never leaves a half-made `dst`, and an existing `dst` is
 * replaced only when `overwrite` allows it, it is a regular file and nobody has it open
 * (locked). The temporary file is removed when `build` fails.
 */
export function buildThenReplace<T>(
  dst: string,
  what: string,
  overwrite: boolean,
  build: (temporary: string) => T,
): T {
  let existing: Deno.FileInfo | undefined;
  try {
    existing = Deno.statSync(dst);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (existing !== undefined) {
    if (!overwrite) throw new ImageError(`Cannot ${what} ${dst}: the file exists; remove it first`);
    if (!existing.isFile) {
      throw new ImageError(`Cannot ${what} ${dst}: it exists and is not a regular file`);
    }
    refuseIfInUse(dst);
  }
  // A symlink stays a symlink: the file it points to is the one replaced.
  const target = existing !== undefined ? Deno.realPathSync(dst) : dst;
  const temporary = temporarySibling(target, what.replace(/\W+/g, "-"));
  try {
    const result = build(temporary);
    if (existing !== undefined) keepOwnership(temporary, existing);
    replaceFile(temporary, target);
    return result;
  } catch (error) {
    try {
      Deno.removeSync(temporary);
    } catch { /* never created */ }
    // Name the file the user asked for, not the temporary one.
    if (error instanceof Error) error.message = error.message.replaceAll(temporary, dst);
    throw error;
  }
}

/** The replacement keeps the replaced file's mode and (when we may set it) its owner. */
function keepOwnership(path: string, previous: Deno.FileInfo): void {
  if (previous.mode !== null) Deno.chmodSync(path, previous.mode & 0o7777);
  try {
    Deno.chownSync(path, previous.uid, previous.gid);
  } catch { /* not root: the file stays ours */ }
}
