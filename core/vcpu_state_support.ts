/**
 * What this host's KVM can save and load for a vCPU: which MSRs (its index list filtered
 * by the allowlist in core/msrs.ts), the size of its XSAVE area, and whether it has XCRs
 * and debug registers. Asked once from `/dev/kvm` and handed to `Vcpu.save()`/`restore()`.
 *
 * @module
 */

import { ioctlBytes } from "../ffi/libc.ts";
import { KVM, KVM_CAP, KVM_STRUCT_SIZE } from "../ffi/kvm/ioctls.ts";
import { decodeMsrList, msrListBuffer } from "../ffi/kvm/vcpu_state_structs.ts";
import type { Kvm } from "./kvm.ts";
import { persistedMsrIndices } from "./msrs.ts";
import type { VcpuStateSupport } from "./vcpu_state.ts";

/** Room for KVM's MSR index list (a few hundred entries today; E2BIG if ever more). */
const MSR_LIST_CAPACITY = 4096;

/** Asks `kvm` what a vCPU state on this host holds. */
export function vcpuStateSupport(kvm: Kvm): VcpuStateSupport {
  const list = msrListBuffer(MSR_LIST_CAPACITY);
  ioctlBytes(kvm.fd, KVM.GET_MSR_INDEX_LIST, list, "ioctl(KVM_GET_MSR_INDEX_LIST)");
  const xsave = kvm.checkExtension(KVM_CAP.XSAVE) > 0;
  // KVM_CAP_XSAVE2 answers the XSAVE area's size (0 on kernels before 5.17: 4 KiB then).
  const xsave2 = kvm.checkExtension(KVM_CAP.XSAVE2);
  return {
    msrIndices: persistedMsrIndices(decodeMsrList(list)),
    xsaveSize: xsave ? Math.max(KVM_STRUCT_SIZE.xsave, xsave2) : 0,
    xcrs: kvm.checkExtension(KVM_CAP.XCRS) > 0,
    debugregs: kvm.checkExtension(KVM_CAP.DEBUGREGS) > 0,
  };
}
