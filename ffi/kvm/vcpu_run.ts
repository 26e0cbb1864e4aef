/**
 * KVM_RUN, the one ioctl on the vCPU thread's hot path, as a bare call: no exception on
 * failure, so the run loop retries EINTR/EAGAIN without one.
 *
 * @module
 */

import { libc } from "../libc.ts";
import { KVM } from "./ioctls.ts";

/** ioctl(KVM_RUN): 0 after an exit, or -1 with the reason in `errno()` (same thread). */
export function kvmRun(vcpuFd: number): number {
  return libc().ioctl_value(vcpuFd, KVM.RUN, 0n);
}

/**
 * ioctl(KVM_RUN) on one of Deno's blocking-pool threads, so the calling thread's event
 * loop keeps running while the vCPU is in the guest. Settles with 0 after an exit or -1;
 * errno is lost with the thread, so the caller tells a kick from a failure by what KVM
 * left in kvm_run (`exit_reason` KVM_EXIT_INTR, or its own immediate_exit).
 */
export function kvmRunOffThread(vcpuFd: number): Promise<number> {
  return libc().ioctl_value_off_thread(vcpuFd, KVM.RUN, 0n);
}
