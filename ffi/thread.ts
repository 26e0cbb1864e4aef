/**
 * Thread identity and signals to one thread of this process: a vCPU Worker records its
 * kernel thread id, and the main thread kicks it out of KVM_RUN with a signal to that
 * thread alone.
 *
 * @module
 */

import { libc } from "./libc.ts";

/** gettid(2): the calling thread's kernel thread id. */
export function currentThreadId(): number {
  return libc().gettid();
}

/** tgkill(2) to thread `tid` of this process: 0, or -1 (see `errno()`). */
export function signalThread(tid: number, signal: number): number {
  return libc().tgkill(libc().getpid(), tid, signal);
}

/** ioctl's system call number on x86-64. */
const SYS_IOCTL = 16;

/** A thread of this process as /proc/self/task/TID/syscall shows it. */
export interface ThreadSyscall {
  tid: number;
  /** The file's line: "NR arg0 arg1 ... sp pc" in a system call, "running" on a CPU. */
  line: string;
}

/** Every thread of this process but the calling one; empty when /proc is not readable. */
export function otherThreadsSyscalls(): ThreadSyscall[] {
  const self = currentThreadId();
  const threads: ThreadSyscall[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc/self/task");
  } catch {
    return threads;
  }
  for (const entry of entries) {
    const tid = Number(entry.name);
    if (!Number.isInteger(tid) || tid === self) continue;
    try {
      threads.push({ tid, line: Deno.readTextFileSync(`/proc/self/task/${tid}/syscall`) });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/** The threads of this process blocked in `ioctl(fd, request, ...)` (see `isIoctlLine`). */
export function threadsInIoctl(fd: number, request: bigint): number[] {
  return otherThreadsSyscalls().filter((t) => isIoctlLine(t.line, fd, request)).map((t) => t.tid);
}

/**
 * The threads that may be running `ioctl(fd, request, ...)` now: those blocked in it, and
 * those on a CPU, whose system call /proc cannot show ("running": a vCPU in guest code
 * is one). A signal to a thread that was running something else is handled and forgotten.
 */
export function threadsMaybeInIoctl(fd: number, request: bigint): number[] {
  return otherThreadsSyscalls()
    .filter((t) => t.line.trim() === "running" || isIoctlLine(t.line, fd, request))
    .map((t) => t.tid);
}

/** Whether a /proc/.../syscall line shows `ioctl(fd, request, ...)`. */
export function isIoctlLine(line: string, fd: number, request: bigint): boolean {
  const fields = line.trim().split(" ");
  if (fields.length < 3 || Number(fields[0]) !== SYS_IOCTL) return false;
  try {
    return BigInt(fields[1]) === BigInt(fd) && BigInt(fields[2]) === request;
  } catch {
    return false;
  }
}
