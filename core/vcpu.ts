/**
 * A vCPU file descriptor: its kvm_run area and every piece of state KVM lets a VMM get
 * and set. Running it happens in a vCPU Worker (core/vcpu_worker.ts).
 *
 * @module
 */

import {
  bytesAt,
  closeFd,
  ioctlBytes,
  ioctlValue,
  mmap,
  munmap,
  pointerFrom,
  pointerValue,
} from "../ffi/libc.ts";
import { MAP_SHARED, PROT_READ, PROT_WRITE } from "../ffi/libc_symbols.ts";
import { KVM, KVM_STRUCT_SIZE } from "../ffi/kvm/ioctls.ts";
import {
  decodeFpu,
  decodeRegs,
  decodeSregs,
  encodeFpu,
  encodeRegs,
  encodeSregs,
  type Fpu,
  type Regs,
  type Sregs,
} from "../ffi/kvm/regs.ts";
import {
  cpuidBuffer,
  type CpuidEntry,
  decodeCpuid,
  decodeMsrs,
  encodeCpuid,
  encodeMsrs,
  type MsrEntry,
} from "../ffi/kvm/cpuid.ts";
import { RUN } from "../ffi/kvm/run.ts";
import {
  type DebugRegs,
  decodeDebugRegs,
  decodeXcrs,
  encodeDebugRegs,
  encodeXcrs,
  type Xcr,
} from "../ffi/kvm/vcpu_state_structs.ts";
import type { VcpuState, VcpuStateSupport } from "./vcpu_state.ts";
import { restoreVcpu, saveVcpu } from "./vcpu_persist.ts";

/** The buffer KVM_GET_XSAVE2 gets: above every XSAVE area size (AMX's is about 11 KiB). */
const XSAVE2_BUFFER = 64 * 1024;

/** One virtual CPU. */
export class Vcpu implements Disposable {
  readonly id: number;
  #fd: number;
  #cpuidSet: CpuidEntry[] | null = null;
  readonly #run: Deno.PointerObject;
  readonly #runSize: number;
  /** Whether this object mapped the run area and owns the fd (false in vCPU Workers). */
  readonly #owned: boolean;

  /**
   * Wraps vCPU `fd`. Without `attachTo` it maps the kvm_run area and owns both; with it,
   * it shares a run area mapped by another thread and closing it releases nothing.
   */
  constructor(id: number, fd: number, runSize: number, attachTo?: bigint) {
    this.id = id;
    this.#fd = fd;
    this.#runSize = runSize;
    this.#owned = attachTo === undefined;
    if (attachTo !== undefined) {
      this.#run = pointerFrom(attachTo);
      return;
    }
    try {
      this.#run = mmap(runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /** A handle on a vCPU created by another thread (see the constructor). */
  static attach(id: number, fd: number, run: { pointer: bigint; size: number }): Vcpu {
    return new Vcpu(id, fd, run.size, run.pointer);
  }

  /** The kvm_run area as bytes. */
  runBytes(): Uint8Array {
    return bytesAt(this.#run, this.#runSize);
  }

  get fd(): number {
    return this.#fd;
  }

  /** The kvm_run area's address and size, for the Worker that runs this vCPU. */
  get runArea(): { pointer: bigint; size: number } {
    return { pointer: pointerValue(this.#run), size: this.#runSize };
  }

  /** Makes the next (or current, once kicked) KVM_RUN return at once. */
  setImmediateExit(value: boolean): void {
    this.runBytes()[RUN.IMMEDIATE_EXIT] = value ? 1 : 0;
  }

  getRegs(): Regs {
    return decodeRegs(this.#get(KVM.GET_REGS, KVM_STRUCT_SIZE.regs, "KVM_GET_REGS"));
  }
  setRegs(regs: Regs): void {
    ioctlBytes(this.#fd, KVM.SET_REGS, encodeRegs(regs), "ioctl(KVM_SET_REGS)");
  }

  getSregs(): Sregs {
    return decodeSregs(this.#get(KVM.GET_SREGS, KVM_STRUCT_SIZE.sregs, "KVM_GET_SREGS"));
  }
  setSregs(sregs: Sregs): void {
    ioctlBytes(this.#fd, KVM.SET_SREGS, encodeSregs(sregs), "ioctl(KVM_SET_SREGS)");
  }

  getFpu(): Fpu {
    return decodeFpu(this.#get(KVM.GET_FPU, KVM_STRUCT_SIZE.fpu, "KVM_GET_FPU"));
  }
  setFpu(fpu: Fpu): void {
    ioctlBytes(this.#fd, KVM.SET_FPU, encodeFpu(fpu), "ioctl(KVM_SET_FPU)");
  }

  setCpuid(entries: CpuidEntry[]): void {
    ioctlBytes(this.#fd, KVM.SET_CPUID2, encodeCpuid(entries), "ioctl(KVM_SET_CPUID2)");
    // As KVM would answer: unsigned (tables built with bit operations hold signed numbers).
    this.#cpuidSet = decodeCpuid(encodeCpuid(entries));
  }
  /**
   * The CPUID table this VMM gave the vCPU, as it gave it. A state saves this rather than
   * KVM_GET_CPUID2's answer: on a real KVM host the two are the same, but some backends
   * (the nested kvm_pvm, see HOST_FACTS) answer with the host's own leaves, which then
   * fail the feature check of the restore on the very host that saved them.
   */
  cpuidSet(): CpuidEntry[] {
    return this.#cpuidSet === null
      ? this.getCpuid()
      : this.#cpuidSet.map((entry) => ({ ...entry }));
  }
  getCpuid(): CpuidEntry[] {
    const buffer = cpuidBuffer();
    ioctlBytes(this.#fd, KVM.GET_CPUID2, buffer, "ioctl(KVM_GET_CPUID2)");
    return decodeCpuid(buffer);
  }

  /** Reads the MSRs with the given indices. */
  getMsrs(indices: number[]): MsrEntry[] {
    const bytes = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const read = ioctlBytes(this.#fd, KVM.GET_MSRS, bytes, "ioctl(KVM_GET_MSRS)");
    return decodeMsrs(bytes, read);
  }
  /** Writes MSRs in order until KVM refuses one; returns how many it accepted. */
  trySetMsrs(entries: MsrEntry[]): number {
    return ioctlBytes(this.#fd, KVM.SET_MSRS, encodeMsrs(entries), "ioctl(KVM_SET_MSRS)");
  }
  /** Writes MSRs; throws if KVM accepted fewer than all of them. */
  setMsrs(entries: MsrEntry[]): void {
    const written = ioctlBytes(this.#fd, KVM.SET_MSRS, encodeMsrs(entries), "ioctl(KVM_SET_MSRS)");
    if (written !== entries.length) {
      const failed = entries[written];
      throw new Error(
        `KVM refused MSR 0x${failed.index.toString(16)} (${written} of ${entries.length} set)`,
      );
    }
  }

  /** The local APIC register page (struct kvm_lapic_state). */
  getLapic(): Uint8Array {
    return this.#get(KVM.GET_LAPIC, KVM_STRUCT_SIZE.lapic, "KVM_GET_LAPIC");
  }
  setLapic(lapic: Uint8Array): void {
    ioctlBytes(this.#fd, KVM.SET_LAPIC, lapic.slice(), "ioctl(KVM_SET_LAPIC)");
  }

  getMpState(): number {
    const bytes = this.#get(KVM.GET_MP_STATE, KVM_STRUCT_SIZE.mpState, "KVM_GET_MP_STATE");
    return new DataView(bytes.buffer).getUint32(0, true);
  }
  setMpState(state: number): void {
    const bytes = new Uint8Array(new Uint32Array([state]).buffer);
    ioctlBytes(this.#fd, KVM.SET_MP_STATE, bytes, "ioctl(KVM_SET_MP_STATE)");
  }

  /** Raw struct kvm_vcpu_events (pending exceptions, interrupts, NMIs, SIPI vector). */
  getVcpuEvents(): Uint8Array {
    return this.#get(KVM.GET_VCPU_EVENTS, KVM_STRUCT_SIZE.vcpuEvents, "KVM_GET_VCPU_EVENTS");
  }
  setVcpuEvents(events: Uint8Array): void {
    ioctlBytes(this.#fd, KVM.SET_VCPU_EVENTS, events.slice(), "ioctl(KVM_SET_VCPU_EVENTS)");
  }

  /** The guest TSC frequency in kHz (0 when KVM does not know it). */
  getTscKhz(): number {
    return ioctlValue(this.#fd, KVM.GET_TSC_KHZ, 0, "ioctl(KVM_GET_TSC_KHZ)");
  }
  /** Sets the guest TSC frequency (KVM scales the TSC; needs KVM_CAP_TSC_CONTROL). */
  setTscKhz(khz: number): void {
    ioctlValue(this.#fd, KVM.SET_TSC_KHZ, khz, "ioctl(KVM_SET_TSC_KHZ)");
  }

  /**
   * The XSAVE area, `size` bytes (KVM_CAP_XSAVE2's answer): areas above 4 KiB (AMX)
   * only come out of KVM_GET_XSAVE2.
   */
  getXsave(size: number): Uint8Array {
    if (size <= KVM_STRUCT_SIZE.xsave) {
      return this.#get(KVM.GET_XSAVE, KVM_STRUCT_SIZE.xsave, "KVM_GET_XSAVE");
    }
    // KVM_GET_XSAVE2 writes as many bytes as the vCPU's area has, whatever the buffer:
    // room for the largest area there is, so a size that grew since can never overrun.
    const area = this.#get(KVM.GET_XSAVE2, Math.max(size, XSAVE2_BUFFER), "KVM_GET_XSAVE2");
    return area.slice(0, size);
  }
  /**
   * Loads an XSAVE area. KVM reads as many bytes as the vCPU's area has, whatever was
   * passed: the area goes in a zero-padded buffer as large as KVM_GET_XSAVE2's (zeros past
   * the saved components are what the XSAVE header says they are: not in use).
   */
  setXsave(area: Uint8Array): void {
    const buffer = new Uint8Array(Math.max(area.length, XSAVE2_BUFFER));
    buffer.set(area);
    ioctlBytes(this.#fd, KVM.SET_XSAVE, buffer, "ioctl(KVM_SET_XSAVE)");
  }

  getXcrs(): Xcr[] {
    return decodeXcrs(this.#get(KVM.GET_XCRS, KVM_STRUCT_SIZE.xcrs, "KVM_GET_XCRS"));
  }
  setXcrs(xcrs: Xcr[]): void {
    ioctlBytes(this.#fd, KVM.SET_XCRS, encodeXcrs(xcrs), "ioctl(KVM_SET_XCRS)");
  }

  getDebugRegs(): DebugRegs {
    return decodeDebugRegs(
      this.#get(KVM.GET_DEBUGREGS, KVM_STRUCT_SIZE.debugregs, "KVM_GET_DEBUGREGS"),
    );
  }
  setDebugRegs(regs: DebugRegs): void {
    ioctlBytes(this.#fd, KVM.SET_DEBUGREGS, encodeDebugRegs(regs), "ioctl(KVM_SET_DEBUGREGS)");
  }

  /**
   * This vCPU's KVM state (core/vcpu_state.ts). It must not be running: paused (its
   * Worker parked, see VcpuThread.save) or not started. `support` comes from
   * `vcpuStateSupport(kvm)`.
   */
  save(support: VcpuStateSupport): VcpuState {
    return saveVcpu(this, support);
  }

  /**
   * Loads a saved state into this vCPU, which has not run yet (a VM built for a
   * restore). The state is untrusted: it is checked whole first and a bad one throws
   * `StateError` before any ioctl; see core/vcpu_persist.ts for the order.
   */
  restore(state: unknown, support: VcpuStateSupport): void {
    restoreVcpu(this, state, support);
  }

  /** Translates a guest virtual address with the vCPU's current page tables. */
  translate(linear: bigint): { physical: bigint; valid: boolean } {
    const bytes = new Uint8Array(KVM_STRUCT_SIZE.translation);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, linear, true);
    ioctlBytes(this.#fd, KVM.TRANSLATE, bytes, "ioctl(KVM_TRANSLATE)");
    return { physical: view.getBigUint64(8, true), valid: view.getUint8(16) !== 0 };
  }

  /**
   * Tells KVM the guest was stopped (KVM_KVMCLOCK_CTRL), so the guest's soft-lockup and
   * RCU-stall detectors forgive the gap in its clock. Call it before the vCPU runs again.
   */
  notifyPaused(): void {
    try {
      ioctlValue(this.#fd, KVM.KVMCLOCK_CTRL, 0, "ioctl(KVM_KVMCLOCK_CTRL)");
    } catch {
      // Fails with EINVAL until the guest enables kvmclock: nothing to tell then.
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    if (!this.#owned) {
      this.#fd = -1;
      return;
    }
    munmap(this.#run, this.#runSize);
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #get(request: bigint, size: number, name: string): Uint8Array<ArrayBuffer> {
    const bytes = new Uint8Array(size);
    ioctlBytes(this.#fd, request, bytes, `ioctl(${name})`);
    return bytes;
  }
}
