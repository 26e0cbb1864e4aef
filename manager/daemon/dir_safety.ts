/**
 * The directories the daemon trusts (the socket's, where the VMMs' control and console
 * sockets live too, and the state directory) must be its own: another user who owns one,
 * or may write to it or to a directory above it, could swap `api.sock` for a socket of
 * their own and read root's requests, or replace a domain definition. Checked at every
 * level, as OpenSSH checks an authorized_keys path.
 *
 * @module
 */

import { dirname } from "node:path";
import { DenovisorError } from "../../common/errors.ts";

/** A directory the daemon may not trust. */
export class UnsafeDirectoryError extends DenovisorError {
  constructor(message: string) {
    super("forbidden", message);
  }
}

const STICKY = 0o1000;

/**
 * Throws `UnsafeDirectoryError` unless `path` (symlinks resolved) is a directory owned by
 * root or this process's user that no one else may write to, and every directory above
 * it is owned by root or this user and writable by others only with the sticky bit (as
 * /tmp is, where no one may rename another user's entries).
 */
export function checkTrustedDirectory(path: string, what: string): void {
  const uid = Deno.uid() ?? 0;
  const real = Deno.realPathSync(path);
  const fix = `use a directory owned by root (or uid ${uid}) with mode 0700 or 0750`;
  const info = Deno.statSync(real);
  if (!info.isDirectory) throw new UnsafeDirectoryError(`${what} ${real} is not a directory`);
  refuseOwner(`${what} ${real}`, info, uid, fix);
  if ((info.mode! & 0o022) !== 0) {
    throw new UnsafeDirectoryError(
      `${what} ${real} is writable by ${writers(info.mode!)}, who could replace what the ` +
        `daemon keeps there; ${fix}, e.g. chmod go-w ${real}`,
    );
  }
  for (let dir = dirname(real);; dir = dirname(dir)) {
    const above = Deno.statSync(dir);
    refuseOwner(`${dir} (above ${what} ${real})`, above, uid, fix);
    if ((above.mode! & 0o022) !== 0 && (above.mode! & STICKY) === 0) {
      throw new UnsafeDirectoryError(
        `${what} ${real} lies in ${dir}, which is writable by ${writers(above.mode!)} ` +
          `without the sticky bit, so they could rename it away; ${fix}`,
      );
    }
    if (dir === "/") break;
  }
}

function refuseOwner(label: string, info: Deno.FileInfo, uid: number, fix: string): void {
  if (info.uid !== 0 && info.uid !== uid) {
    throw new UnsafeDirectoryError(
      `${label} is owned by uid ${info.uid}, who could replace what the daemon keeps there; ${fix}`,
    );
  }
}

function writers(mode: number): string {
  return (mode & 0o002) !== 0 ? "everyone" : "its group";
}
