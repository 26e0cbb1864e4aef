/**
 * The process-confinement system calls: `prctl(PR_SET_NO_NEW_PRIVS)` and
 * `seccomp(SECCOMP_SET_MODE_FILTER)` with a classic-BPF program assembled above ffi/
 * (vmm/sandbox/bpf.ts). The program arrives as bytes (8 per `struct sock_filter`); this
 * file builds the `struct sock_fprog` that points at them.
 *
 * @module
 */

import { errno, libc, pointerOf } from "./libc.ts";
import { SyscallError } from "./errno.ts";

const PR_SET_NO_NEW_PRIVS = 38;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_GET_SECCOMP = 21;
/** x86_64 system call number of seccomp(2) (glibc 2.36 has no wrapper). */
const SYS_SECCOMP = 317;
const SECCOMP_SET_MODE_FILTER = 1;
/**
 * Install on every thread of the process, not only the caller: V8's platform threads and
 * the runtime's I/O threads exist before any of our code runs. The kernel also sets
 * no_new_privs on each of them.
 */
export const SECCOMP_FILTER_FLAG_TSYNC = 1;
/** Log every action but SECCOMP_RET_ALLOW (for measuring a profile). */
export const SECCOMP_FILTER_FLAG_LOG = 2;

/** The size of one `struct sock_filter` {u16 code; u8 jt; u8 jf; u32 k}. */
export const SOCK_FILTER_SIZE = 8;
/** BPF_MAXINSNS: the kernel refuses longer programs. */
export const BPF_MAX_INSTRUCTIONS = 4096;

/** Sets no_new_privs on the calling thread (and its future children): execve can never gain privileges again. */
export function setNoNewPrivs(): void {
  if (libc().prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n) !== 0) {
    throw new SyscallError("prctl(PR_SET_NO_NEW_PRIVS)", errno());
  }
}

/** Whether the calling thread has no_new_privs set. */
export function noNewPrivs(): boolean {
  return libc().prctl(PR_GET_NO_NEW_PRIVS, 0n, 0n, 0n, 0n) === 1;
}

/** The calling thread's seccomp mode: 0 none, 1 strict, 2 filter. */
export function seccompMode(): number {
  const mode = libc().prctl(PR_GET_SECCOMP, 0n, 0n, 0n, 0n);
  if (mode < 0) throw new SyscallError("prctl(PR_GET_SECCOMP)", errno());
  return mode;
}

/** A seccomp filter refused by the kernel, or a thread that could not be synchronised. */
export class SeccompInstallError extends SyscallError {
  constructor(errnoValue: number, readonly unsyncedThread?: number) {
    super(
      unsyncedThread === undefined
        ? "seccomp(SECCOMP_SET_MODE_FILTER)"
        : `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread ${unsyncedThread} has another filter`,
      errnoValue,
    );
    this.name = "SeccompInstallError";
  }
}

/**
 * Installs `program` (whole `struct sock_filter` records) as a seccomp filter on the
 * calling thread, or with `SECCOMP_FILTER_FLAG_TSYNC` on every thread of the process.
 * The caller must have set no_new_privs first (or hold CAP_SYS_ADMIN). Filters stack:
 * once installed, a filter stays for the life of the thread and its children.
 */
export function installSeccompFilter(program: Uint8Array, flags: number): void {
  const count = program.length / SOCK_FILTER_SIZE;
  if (!Number.isInteger(count) || count === 0 || count > BPF_MAX_INSTRUCTIONS) {
    throw new RangeError(
      `A seccomp program must be 1 to ${BPF_MAX_INSTRUCTIONS} instructions of 8 bytes, not ${program.length} bytes`,
    );
  }
  const copy = new Uint8Array(program); // aligned, and alive for the whole call
  // struct sock_fprog { unsigned short len; /* 6 bytes padding */ struct sock_filter *filter; }
  const fprog = new BigUint64Array(2);
  fprog[0] = BigInt(count);
  fprog[1] = BigInt(Deno.UnsafePointer.value(pointerOf(copy)));
  const result = libc().syscall3(
    BigInt(SYS_SECCOMP),
    BigInt(SECCOMP_SET_MODE_FILTER),
    BigInt(flags),
    Deno.UnsafePointer.of(fprog),
  );
  if (result < 0n) throw new SeccompInstallError(errno());
  // With TSYNC, a positive result is the id of a thread that could not be synchronised.
  if (result > 0n) throw new SeccompInstallError(0, Number(result));
}
