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
