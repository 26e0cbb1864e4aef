/**
 * Codecs for the VM-level structs: memory regions, IRQ lines and routing, irqfd,
 * ioeventfd, PIT configuration and the clock.
 *
 * @module
 */

import { KVM_STRUCT_SIZE } from "./ioctls.ts";

function struct(size: number): [Uint8Array<ArrayBuffer>, DataView] {
  const bytes = new Uint8Array(size);
  return [bytes, new DataView(bytes.buffer)];
}

/** struct kvm_userspace_memory_region. */
export interface UserMemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: number;
  memorySize: number;
  userspaceAddr: bigint;
}

/** kvm_userspace_memory_region.flags */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

export function encodeUserMemoryRegion(r: UserMemoryRegion): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.userMemoryRegion);
  view.setUint32(0, r.slot, true);
  view.setUint32(4, r.flags, true);
  view.setBigUint64(8, BigInt(r.guestPhysAddr), true);
  view.setBigUint64(16, BigInt(r.memorySize), true);
  view.setBigUint64(24, r.userspaceAddr, true);
  return bytes;
}

/** struct kvm_irq_level. */
export function encodeIrqLevel(irq: number, level: number): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.irqLevel);
  view.setUint32(0, irq, true);
  view.setUint32(4, level, true);
  return bytes;
}

/** struct kvm_irqfd. */
export interface Irqfd {
  fd: number;
  gsi: number;
  /** KVM_IRQFD_FLAG_DEASSIGN to remove. */
  flags?: number;
  resampleFd?: number;
}
export const KVM_IRQFD_FLAG_DEASSIGN = 1;
export const KVM_IRQFD_FLAG_RESAMPLE = 2;

export function encodeIrqfd(i: Irqfd): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.irqfd);
  view.setUint32(0, i.fd, true);
  view.setUint32(4, i.gsi, true);
  view.setUint32(8, i.flags ?? 0, true);
  view.setUint32(12, i.resampleFd ?? 0, true);
  return bytes;
}

/** struct kvm_ioeventfd. */
export interface Ioeventfd {
  address: number;
  /** 0 (any width, MMIO only), 1, 2, 4 or 8. */
  length: number;
  fd: number;
  /** Only fire when the written value equals this. */
  datamatch?: bigint;
  pio?: boolean;
  deassign?: boolean;
}
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;

export function encodeIoeventfd(e: Ioeventfd): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.ioeventfd);
  let flags = 0;
  if (e.datamatch !== undefined) flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (e.pio) flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (e.deassign) flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  view.setBigUint64(0, e.datamatch ?? 0n, true);
  view.setBigUint64(8, BigInt(e.address), true);
  view.setUint32(16, e.length, true);
  view.setInt32(20, e.fd, true);
  view.setUint32(24, flags, true);
  return bytes;
}

/** One GSI routing entry: to an irqchip pin or an MSI message. */
export type IrqRoute =
  | { gsi: number; kind: "irqchip"; irqchip: number; pin: number }
  | { gsi: number; kind: "msi"; addressLo: number; addressHi: number; data: number };

export const KVM_IRQ_ROUTING_IRQCHIP = 1;
export const KVM_IRQ_ROUTING_MSI = 2;
/** Irqchip numbers in routing entries. */
export const KVM_IRQCHIP_PIC_MASTER = 0;
export const KVM_IRQCHIP_PIC_SLAVE = 1;
export const KVM_IRQCHIP_IOAPIC = 2;

const ROUTING_ENTRY = 48;

/** struct kvm_irq_routing with its entries. */
export function encodeIrqRouting(routes: IrqRoute[]): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.irqRouting + routes.length * ROUTING_ENTRY);
  view.setUint32(0, routes.length, true);
  routes.forEach((r, i) => {
    const o = KVM_STRUCT_SIZE.irqRouting + i * ROUTING_ENTRY;
    view.setUint32(o, r.gsi, true);
    if (r.kind === "irqchip") {
      view.setUint32(o + 4, KVM_IRQ_ROUTING_IRQCHIP, true);
      view.setUint32(o + 16, r.irqchip, true);
      view.setUint32(o + 20, r.pin, true);
    } else {
      view.setUint32(o + 4, KVM_IRQ_ROUTING_MSI, true);
      view.setUint32(o + 16, r.addressLo, true);
      view.setUint32(o + 20, r.addressHi, true);
      view.setUint32(o + 24, r.data, true);
    }
  });
  return bytes;
}

/** struct kvm_pit_config with KVM_PIT_SPEAKER_DUMMY (no speaker port emulation). */
export const KVM_PIT_SPEAKER_DUMMY = 1;
export function encodePitConfig(flags = KVM_PIT_SPEAKER_DUMMY): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.pitConfig);
  view.setUint32(0, flags, true);
  return bytes;
}

/** struct kvm_clock_data (the parts a VMM reads and sets). */
export interface ClockData {
  /** kvmclock nanoseconds. */
  clock: bigint;
  /** KVM_CLOCK_* flags: which of the other fields are valid. */
  flags: number;
  /** Host CLOCK_REALTIME nanoseconds at `clock`, when flags has KVM_CLOCK_REALTIME. */
  realtime?: bigint;
}
/** kvm_clock_data.flags */
export const KVM_CLOCK_TSC_STABLE = 2;
export const KVM_CLOCK_REALTIME = 4;
export const KVM_CLOCK_HOST_TSC = 8;

export function encodeClock(c: ClockData): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.clock);
  view.setBigUint64(0, c.clock, true);
  view.setUint32(8, c.flags, true);
  view.setBigUint64(16, c.realtime ?? 0n, true);
  return bytes;
}
export function decodeClock(bytes: Uint8Array): ClockData {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint32(8, true);
  const clock = { clock: view.getBigUint64(0, true), flags };
  return flags & KVM_CLOCK_REALTIME ? { ...clock, realtime: view.getBigUint64(16, true) } : clock;
}

/** struct kvm_irqchip: chip id, then 512 bytes of PIC or IOAPIC state kept raw. */
export const KVM_IRQCHIP_STATE_SIZE = 512;
export function irqchipBuffer(chipId: number, state?: Uint8Array): Uint8Array<ArrayBuffer> {
  const [bytes, view] = struct(KVM_STRUCT_SIZE.irqchip);
  view.setUint32(0, chipId, true);
  if (state) bytes.set(state.subarray(0, KVM_IRQCHIP_STATE_SIZE), 8);
  return bytes;
}
