/**
 * Thread identity and signals to one thread of this process: a vCPU Worker records its
 * kernel thread id, and the main thread kicks it out of KVM_RUN with a signal to that
 * thread alone.
 *
 * @module
 */

import { cString, errno, libc, pointerOf } from "./libc.ts";
import { O_CLOEXEC, O_RDONLY } from "./libc_symbols.ts";

/** gettid(2): the calling thread's kernel thread id. */
export function currentThreadId(): number {
  return libc().gettid();
}

/** tgkill(2) to thread `tid` of this process: 0, or -1 (see `errno()`). */
export function signalThread(tid: number, signal: number): number {
  return libc().tgkill(libc().getpid(), tid, signal);
}

/** ioctl's and getdents64's system call numbers on x86-64. */
const SYS_IOCTL = 16;
const SYS_GETDENTS64 = 217;
/** open(2)'s O_DIRECTORY on x86-64. */
const O_DIRECTORY = 0o200000;
const TASK_DIR = "/proc/self/task";

/** A thread of this process as /proc/self/task/TID/syscall shows it. */
export interface ThreadSyscall {
  tid: number;
  /**
   * The file's line: "NR arg0 arg1 ... sp pc" in a system call, "running" on a CPU;
   * undefined when it could not be read (the thread may be anywhere).
   */
  line: string | undefined;
}

/** Problems already logged: each is said once, not at every kick. */
const logged = new Set<string>();

function logOnce(key: string, message: string): void {
  if (logged.has(key)) return;
  logged.add(key);
  console.error(message);
}

/**
 * Every thread of this process but the calling one. When Deno may not read /proc (no
 * --allow-all: NotCapable), the files are read through libc, which Deno's permissions
 * do not cover; a thread whose syscall file cannot be read at all has no `line`. Empty
 * only when the threads cannot be listed even so (an LSM denies /proc): logged, once.
 */
export function otherThreadsSyscalls(): ThreadSyscall[] {
  const self = currentThreadId();
  return taskIds().filter((tid) => tid !== self).map((tid) => ({ tid, line: syscallLine(tid) }));
}

function taskIds(): number[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(TASK_DIR)].map((entry) => entry.name);
  } catch (error) {
    logOnce(
      "deno",
      `Cannot list this process's threads in ${TASK_DIR} (${error}); listing them through ` +
        "libc instead (vCPU kicks need them)",
    );
    try {
      names = listDirectoryWithLibc(TASK_DIR);
    } catch (libcError) {
      logOnce(
        "libc",
        `Cannot list this process's threads in ${TASK_DIR} (${libcError}): a vCPU run ` +
          "off-thread cannot be kicked out of KVM_RUN, so pausing or stopping a VM whose vCPU " +
          "is halted will time out; allow the VMM to read /proc/self/task",
      );
      return [];
    }
  }
  return names.map(Number).filter((tid) => Number.isInteger(tid) && tid > 0);
}

function syscallLine(tid: number): string | undefined {
  const path = `${TASK_DIR}/${tid}/syscall`;
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // Not readable by Deno (permissions), or the thread ended: try libc, else unknown.
    // A thread that ended costs a signal that goes nowhere (tgkill fails with ESRCH).
    return readFileWithLibc(path);
  }
}

/** A small file's text read with open(2)/read(2), or undefined when it cannot be. */
function readFileWithLibc(path: string): string | undefined {
  const fd = libc().open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const bytes = new Uint8Array(512);
    const count = Number(libc().read(fd, bytes, BigInt(bytes.length)));
    return count < 0 ? undefined : new TextDecoder().decode(bytes.subarray(0, count));
  } finally {
    libc().close(fd);
  }
}

/** A directory's entry names (but . and ..) through getdents64(2); throws on failure. */
function listDirectoryWithLibc(path: string): string[] {
  const fd = libc().open(cString(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) throw new Error(`open: errno ${errno()}`);
  const names: string[] = [];
  try {
    const buffer = new Uint8Array(16384);
    const view = new DataView(buffer.buffer);
    const address = Deno.UnsafePointer.value(pointerOf(buffer));
    for (;;) {
      // syscall(SYS_getdents64, fd, buffer, size): the size goes in the pointer slot.
      const count = Number(
        libc().syscall3(
          BigInt(SYS_GETDENTS64),
          BigInt(fd),
          BigInt(address),
          Deno.UnsafePointer.create(BigInt(buffer.length)),
        ),
      );
      if (count < 0) throw new Error(`getdents64: errno ${errno()}`);
      if (count === 0) return names.filter((name) => name !== "." && name !== "..");
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name[].
      for (let offset = 0; offset < count;) {
        const length = view.getUint16(offset + 16, true);
        const name = buffer.subarray(offset + 19, offset + length);
        names.push(new TextDecoder().decode(name.subarray(0, name.indexOf(0))));
        offset += length;
      }
    }
  } finally {
    libc().close(fd);
  }
}

/** The threads of this process blocked in `ioctl(fd, request, ...)` (see `isIoctlLine`). */
export function threadsInIoctl(fd: number, request: bigint): number[] {
  return otherThreadsSyscalls()
    .filter((t) => t.line !== undefined && isIoctlLine(t.line, fd, request))
    .map((t) => t.tid);
}

/**
 * The threads that may be running `ioctl(fd, request, ...)` now: those blocked in it,
 * those on a CPU, whose system call /proc cannot show ("running": a vCPU in guest code
 * is one), and those whose syscall file could not be read. A signal to a thread that was
 * running something else is handled and forgotten.
 */
export function threadsMaybeInIoctl(fd: number, request: bigint): number[] {
  return otherThreadsSyscalls()
    .filter((t) =>
      t.line === undefined || t.line.trim() === "running" || isIoctlLine(t.line, fd, request)
    )
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
