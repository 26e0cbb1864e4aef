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
