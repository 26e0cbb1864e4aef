/**
 * A system call by number with up to two integer arguments, for tests that must make a
 * call no wrapper makes (the seccomp tests make forbidden calls on purpose). Production
 * code calls the typed wrappers instead.
 *
 * @module
 */

import { libc } from "./libc.ts";

/** syscall(nr, a0, a1, NULL): the raw result (negative errno values are -1 with errno set). */
export function rawSyscall(nr: number, a0 = 0n, a1 = 0n): bigint {
  return libc().syscall3(BigInt(nr), a0, a1, null);
}
