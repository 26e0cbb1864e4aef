/**
 * fstat(2) and fstatfs(2) on an open descriptor, decoded: what kind of file a descriptor
 * really refers to (a path can be swapped between a stat and an open), its identity
 * (device and inode) and the file system it lives on; and clearing O_NONBLOCK once a
 * non-blocking open has shown what it opened. Layouts are x86_64's.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { SyscallError } from "./errno.ts";

/** The kinds of file st_mode distinguishes. */
export type FileKind =
  | "file"
  | "directory"
  | "block device"
  | "character device"
  | "fifo"
  | "socket"
  | "symlink";

/** The fields of struct stat that callers need. */
export interface FdStat {
  kind: FileKind;
  /** st_dev and st_ino: the file's identity, whatever path reached it. */
  dev: bigint;
  ino: bigint;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  size: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  nlink: number;
}

const S_IFMT = 0o170000;
const KINDS: Record<number, FileKind> = {
  0o100000: "file",
  0o040000: "directory",
  0o060000: "block device",
  0o020000: "character device",
  0o010000: "fifo",
  0o140000: "socket",
  0o120000: "symlink",
};

/** fstat(2) of `fd`; throws a `SyscallError` naming fstat. */
export function fstat(fd: number): FdStat {
  // struct stat (x86_64, 144 bytes): st_dev u64 @0, st_ino u64 @8, st_nlink u64 @16,
  // st_mode u32 @24, st_uid @28, st_gid @32, st_rdev u64 @40, st_size i64 @48,
  // st_blksize i64 @56, st_blocks i64 @64, then the times.
  const buffer = new Uint8Array(144);
  if (libc().fstat(fd, buffer) !== 0) throw new SyscallError("fstat", errno());
  const view = new DataView(buffer.buffer);
  const mode = view.getUint32(24, true);
  return {
    kind: KINDS[mode & S_IFMT] ?? "file",
    dev: view.getBigUint64(0, true),
    ino: view.getBigUint64(8, true),
    mode: mode & 0o7777,
    size: Number(view.getBigInt64(48, true)),
    blocks: Number(view.getBigInt64(64, true)),
    nlink: Number(view.getBigUint64(16, true)),
  };
}

/** f_type of fstatfs(2) on `fd`: the file system's magic number. */
export function fstatfsType(fd: number): number {
  // struct statfs (x86_64, 120 bytes) starts with f_type as a long.
  const buffer = new Uint8Array(120);
  if (libc().fstatfs(fd, buffer) !== 0) throw new SyscallError("fstatfs", errno());
  return Number(new DataView(buffer.buffer).getBigInt64(0, true));
}

/** File systems whose "regular files" are kernel interfaces, never disk images. */
export const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x62656570, "configfs"],
  [0xde5e81e4, "efivarfs"],
  [0xcafe4a11, "bpf"],
]);

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

/** The file status flags of `fd` (F_GETFL: O_NONBLOCK, O_DIRECT, the access mode...). */
export function statusFlags(fd: number): number {
  const flags = libc().fcntl_int(fd, F_GETFL, 0n);
  if (flags < 0) throw new SyscallError("fcntl(F_GETFL)", errno());
  return flags;
}

/** Clears O_NONBLOCK on `fd` (opened non-blocking so that a FIFO could not block the open). */
export function clearNonBlocking(fd: number): void {
  const flags = statusFlags(fd);
  if (libc().fcntl_int(fd, F_SETFL, BigInt(flags & ~O_NONBLOCK)) < 0) {
    throw new SyscallError("fcntl(F_SETFL)", errno());
  }
}

const F_DUPFD_CLOEXEC = 1030;

/** A new close-on-exec descriptor (the lowest free one from 3) for the file `fd` refers to. */
export function duplicateFd(fd: number): number {
  const copy = libc().fcntl_int(fd, F_DUPFD_CLOEXEC, 3n);
  if (copy < 0) throw new SyscallError("fcntl(F_DUPFD_CLOEXEC)", errno());
  return copy;
}

/** Adds `flags` (e.g. O_DIRECT) to the file status flags of `fd`. */
export function addStatusFlags(fd: number, flags: number): void {
  if (libc().fcntl_int(fd, F_SETFL, BigInt(statusFlags(fd) | flags)) < 0) {
    throw new SyscallError("fcntl(F_SETFL)", errno());
  }
}
