/**
 * Typed errors for failed system calls: each names the call and the errno.
 *
 * @module
 */

/** errno values Denovisor reacts to. */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOSYS = 38;
export const E2BIG = 7;
export const ENXIO = 6;

const NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [EIO]: "EIO",
  [ENXIO]: "ENXIO",
  [E2BIG]: "E2BIG",
  [EBADF]: "EBADF",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EFAULT]: "EFAULT",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [ENOSPC]: "ENOSPC",
  [ENOSYS]: "ENOSYS",
};

const MESSAGES: Record<number, string> = {
  [EPERM]: "operation not permitted",
  [ENOENT]: "no such file or directory",
  [EINTR]: "interrupted",
  [EIO]: "input/output error",
  [ENXIO]: "no such device or address",
  [E2BIG]: "argument list too long",
  [EBADF]: "bad file descriptor",
  [EAGAIN]: "resource temporarily unavailable",
  [ENOMEM]: "out of memory",
  [EACCES]: "permission denied",
  [EFAULT]: "bad address",
  [EBUSY]: "device or resource busy",
  [EEXIST]: "file exists",
  [ENODEV]: "no such device",
  [EINVAL]: "invalid argument",
  [ENOSPC]: "no space left on device",
  [ENOSYS]: "function not implemented",
};

/** The symbolic name of an errno value, e.g. "EACCES". */
export function errnoName(code: number): string {
  return NAMES[code] ?? `errno ${code}`;
}

/** A system call or ioctl that failed, with the call's name and errno. */
export class SyscallError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call} failed: ${MESSAGES[errno] ?? "error"} (${errnoName(errno)})`);
    this.name = "SyscallError";
  }
}
