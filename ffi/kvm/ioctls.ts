/**
 * Every KVM ioctl request number Denovisor uses, computed as <linux/kvm.h> does with the
 * _IO/_IOR/_IOW/_IOWR macros. Request numbers above 2^31 must be passed as bigint.
 *
 * @module
 */

const KVMIO = 0xae;
const NONE = 0n;
const WRITE = 1n;
const READ = 2n;

function ioc(direction: bigint, nr: number, size: number): bigint {
  return (direction << 30n) | (BigInt(size) << 16n) | (BigInt(KVMIO) << 8n) | BigInt(nr);
}
const io = (nr: number) => ioc(NONE, nr, 0);
const ior = (nr: number, size: number) => ioc(READ, nr, size);
const iow = (nr: number, size: number) => ioc(WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(READ | WRITE, nr, size);

/** Struct sizes that enter the request numbers (x86-64 layouts). */
export const KVM_STRUCT_SIZE = {
  regs: 144,
  sregs: 312,
  fpu: 416,
  lapic: 1024,
  mpState: 4,
  vcpuEvents: 64,
  irqchip: 520,
  pitState2: 112,
  pitConfig: 64,
  clock: 48,
  userMemoryRegion: 32,
  ioeventfd: 64,
  irqfd: 32,
  irqLevel: 8,
  irqRouting: 8,
  msrs: 8,
  cpuid2: 8,
  enableCap: 104,
  dirtyLog: 16,
  translation: 24,
  xsave: 4096,
  xcrs: 392,
  debugregs: 128,
} as const;

const S = KVM_STRUCT_SIZE;

/** KVM ioctl request numbers, grouped by the fd they apply to. */
export const KVM = {
  // /dev/kvm
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, S.cpuid2),
  GET_MSR_INDEX_LIST: iowr(0x02, 4),
  // VM fd
  CREATE_VCPU: io(0x41),
  GET_DIRTY_LOG: iow(0x42, S.dirtyLog),
  SET_USER_MEMORY_REGION: iow(0x46, S.userMemoryRegion),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, S.irqLevel),
  GET_IRQCHIP: iowr(0x62, S.irqchip),
  SET_IRQCHIP: ior(0x63, S.irqchip),
  IRQ_LINE_STATUS: iowr(0x67, S.irqLevel),
  SET_GSI_ROUTING: iow(0x6a, S.irqRouting),
  IRQFD: iow(0x76, S.irqfd),
  CREATE_PIT2: iow(0x77, S.pitConfig),
  IOEVENTFD: iow(0x79, S.ioeventfd),
  SET_CLOCK: iow(0x7b, S.clock),
  GET_CLOCK: ior(0x7c, S.clock),
  GET_PIT2: ior(0x9f, S.pitState2),
  SET_PIT2: iow(0xa0, S.pitState2),
  ENABLE_CAP: iow(0xa3, S.enableCap),
  // vCPU fd
  RUN: io(0x80),
  GET_REGS: ior(0x81, S.regs),
  SET_REGS: iow(0x82, S.regs),
  GET_SREGS: ior(0x83, S.sregs),
  SET_SREGS: iow(0x84, S.sregs),
  TRANSLATE: iowr(0x85, S.translation),
  GET_MSRS: iowr(0x88, S.msrs),
  SET_MSRS: iow(0x89, S.msrs),
  GET_FPU: ior(0x8c, S.fpu),
  SET_FPU: iow(0x8d, S.fpu),
  GET_LAPIC: ior(0x8e, S.lapic),
  SET_LAPIC: iow(0x8f, S.lapic),
  SET_CPUID2: iow(0x90, S.cpuid2),
  GET_CPUID2: iowr(0x91, S.cpuid2),
  GET_MP_STATE: ior(0x98, S.mpState),
  SET_MP_STATE: iow(0x99, S.mpState),
  GET_VCPU_EVENTS: ior(0x9f, S.vcpuEvents),
  SET_VCPU_EVENTS: iow(0xa0, S.vcpuEvents),
  GET_DEBUGREGS: ior(0xa1, S.debugregs),
  SET_DEBUGREGS: iow(0xa2, S.debugregs),
  GET_XSAVE: ior(0xa4, S.xsave),
  /** Like GET_XSAVE, for areas larger than 4 KiB (KVM_CAP_XSAVE2 gives the size). */
  GET_XSAVE2: ior(0xcf, S.xsave),
  SET_XSAVE: iow(0xa5, S.xsave),
  GET_XCRS: ior(0xa6, S.xcrs),
  SET_XCRS: iow(0xa7, S.xcrs),
  KVMCLOCK_CTRL: io(0xad),
  SET_TSC_KHZ: io(0xa2),
  GET_TSC_KHZ: io(0xa3),
} as const;

/** KVM_CHECK_EXTENSION capability numbers. */
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  PIT: 11,
  MP_STATE: 14,
  SYNC_MMU: 16,
  IOMMU: 18,
  IRQ_ROUTING: 25,
  IRQ_INJECT_STATUS: 26,
  SET_IDENTITY_MAP_ADDR: 37,
  IRQFD: 32,
  PIT2: 33,
  SET_BOOT_CPU_ID: 34,
  IOEVENTFD: 36,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  PIT_STATE2: 35,
  DEBUGREGS: 50,
  KVMCLOCK_CTRL: 76,
  XSAVE: 55,
  XCRS: 56,
  TSC_DEADLINE_TIMER: 72,
  MAX_VCPUS: 66,
  TSC_CONTROL: 60,
  IMMEDIATE_EXIT: 136,
  MAX_VCPU_ID: 128,
  SPLIT_IRQCHIP: 121,
  X2APIC_API: 129,
  EXIT_ON_EMULATION_FAILURE: 204,
  XSAVE2: 208,
} as const;

/** The only KVM API version there has ever been. */
export const KVM_API_VERSION = 12;
