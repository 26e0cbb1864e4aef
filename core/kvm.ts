/**
 * `/dev/kvm`: the system-level KVM handle. It checks the API version and the
 * capabilities Denovisor relies on, and creates VMs.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import { handedKvm } from "../common/handed_descriptors.ts";
import { closeFd, ioctlBytes, ioctlValue, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../ffi/libc_symbols.ts";
import { EACCES, ENODEV, ENOENT, ENXIO, EPERM, SyscallError } from "../ffi/errno.ts";
import { KVM, KVM_API_VERSION, KVM_CAP } from "../ffi/kvm/ioctls.ts";
import { cpuidBuffer, type CpuidEntry, decodeCpuid } from "../ffi/kvm/cpuid.ts";
import { Vm } from "./vm.ts";

/** The default KVM device. */
export const KVM_DEVICE = "/dev/kvm";

/** The KVM device to use: `DENOVISOR_KVM_DEVICE` if set (tests point it elsewhere). */
export function kvmDevicePath(): string {
  return Deno.env.get("DENOVISOR_KVM_DEVICE") || KVM_DEVICE;
}

/** Capabilities without which Denovisor cannot run a VM, with why it needs them. */
export const REQUIRED_CAPABILITIES: ReadonlyArray<[keyof typeof KVM_CAP, string]> = [
  ["IRQCHIP", "in-kernel interrupt controllers"],
  ["USER_MEMORY", "guest memory from user space"],
  ["SET_TSS_ADDR", "the TSS page for real-mode emulation"],
  ["SET_IDENTITY_MAP_ADDR", "the identity-map page"],
  ["EXT_CPUID", "CPUID set-up"],
  ["PIT2", "the in-kernel timer"],
  ["IRQ_ROUTING", "interrupt routing"],
  ["IRQFD", "interrupts without user-space exits"],
  ["IOEVENTFD", "notifications without user-space exits"],
  ["IMMEDIATE_EXIT", "stopping vCPUs without races"],
  ["MP_STATE", "SMP start-up state"],
  ["VCPU_EVENTS", "vCPU event state"],
];

/** The host cannot run VMs: no KVM, no permission, or a KVM that lacks something. */
export class KvmUnavailableError extends DenovisorError {
  constructor(message: string) {
    super("unavailable", message);
  }
}

/** The system KVM handle. */
export class Kvm implements Disposable {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens the KVM device and checks the API version and required capabilities. */
  static open(path: string = kvmDevicePath()): Kvm {
    let fd: number;
    try {
      // A sandboxed VMM has no /dev/kvm in its jail: its launcher handed it one.
      fd = (path === kvmDevicePath() ? handedKvm() : undefined) ??
        openFile(path, O_RDWR | O_CLOEXEC);
    } catch (error) {
      throw new KvmUnavailableError(describeOpenFailure(path, error));
    }
    const kvm = new Kvm(fd);
    try {
      const version = kvm.apiVersion();
      if (version !== KVM_API_VERSION) {
        throw new KvmUnavailableError(
          `${path} speaks KVM API version ${version}, Denovisor needs ${KVM_API_VERSION}`,
        );
      }
      const missing = kvm.missingCapabilities();
      if (missing.length > 0) {
        throw new KvmUnavailableError(
          `${path} lacks ${missing.map(([cap, why]) => `${cap} (${why})`).join(", ")}`,
        );
      }
    } catch (error) {
      kvm.close();
      throw error;
    }
    return kvm;
  }

  get fd(): number {
    return this.#fd;
  }

  apiVersion(): number {
    return ioctlValue(this.#fd, KVM.GET_API_VERSION, 0, "ioctl(KVM_GET_API_VERSION)");
  }

  /** KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value. */
  checkExtension(cap: number): number {
    return ioctlValue(this.#fd, KVM.CHECK_EXTENSION, cap, "ioctl(KVM_CHECK_EXTENSION)");
  }

  /** Required capabilities that this KVM lacks. */
  missingCapabilities(): Array<[string, string]> {
    return REQUIRED_CAPABILITIES.filter(([cap]) => this.checkExtension(KVM_CAP[cap]) <= 0);
  }

  /** The most vCPUs one VM may have. */
  maxVcpus(): number {
    const max = this.checkExtension(KVM_CAP.MAX_VCPUS);
    return max > 0 ? max : Math.max(this.checkExtension(KVM_CAP.NR_VCPUS), 4);
  }

  /** Size of the kvm_run area each vCPU maps. */
  vcpuMmapSize(): number {
    return ioctlValue(this.#fd, KVM.GET_VCPU_MMAP_SIZE, 0, "ioctl(KVM_GET_VCPU_MMAP_SIZE)");
  }

  /** The CPUID leaves KVM can present to guests. */
  supportedCpuid(): CpuidEntry[] {
    const buffer = cpuidBuffer();
    ioctlBytes(this.#fd, KVM.GET_SUPPORTED_CPUID, buffer, "ioctl(KVM_GET_SUPPORTED_CPUID)");
    return decodeCpuid(buffer);
  }

  /** Creates an empty VM. */
  createVm(): Vm {
    const vmFd = ioctlValue(this.#fd, KVM.CREATE_VM, 0, "ioctl(KVM_CREATE_VM)");
    return new Vm(vmFd, this.vcpuMmapSize());
  }

  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function describeOpenFailure(path: string, error: unknown): string {
  if (!(error instanceof SyscallError)) return `Cannot open ${path}: ${error}`;
  switch (error.errno) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return `Cannot open ${path}: no such device; load the kvm module (modprobe kvm_intel ` +
        `or kvm_amd) and enable virtualization in the firmware`;
    case EACCES:
    case EPERM:
      return `Cannot open ${path}: permission denied; run as root or add the user to the ` +
        `kvm group`;
    default:
      return `Cannot open ${path}: ${error.message}`;
  }
}
