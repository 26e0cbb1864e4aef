/**
 * rename(2) that never replaces: renameat2 with RENAME_NOREPLACE, for moves where an
 * existing file at the target is somebody's data (Linux >= 3.15; ext4, xfs, btrfs, tmpfs).
 *
 * @module
 */

import { cString, errno, libc } from "./libc.ts";
import { SyscallError } from "./errno.ts";

const AT_FDCWD = -100;
const RENAME_NOREPLACE = 1;

/**
 * Moves `from` to `to` atomically, failing with a `SyscallError` (errno EEXIST) when `to`
 * exists instead of replacing it.
 */
export function renameNoReplace(from: string, to: string): void {
  if (libc().renameat2(AT_FDCWD, cString(from), AT_FDCWD, cString(to), RENAME_NOREPLACE) !== 0) {
    throw new SyscallError(`rename(${from}, ${to})`, errno());
  }
}
