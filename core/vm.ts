/**
 * A KVM virtual machine: memory slots, the in-kernel interrupt controllers and timer,
 * interrupt lines and routing, irqfd/ioeventfd registration, vCPU creation, and the
 * save/restore of the VM-level KVM state (clock, PIT, PICs, IOAPIC; see core/vm_state.ts).
 *
 * @module
 */

import { closeFd, ioctlBytes, ioctlValue } from "../ffi/libc.ts";
import { KVM } from "../ffi/kvm/ioctls.ts";
import {
  type ClockData,
  decodeClock,
  encodeClock,
  encodeIoeventfd,
  encodeIrqfd,
  encodeIrqLevel,
  encodeIrqRouting,
  encodePitConfig,
  encodeUserMemoryRegion,
  type Ioeventfd,
  irqchipBuffer,
  type IrqRoute,
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  type UserMemoryRegion,
} from "../ffi/kvm/vm_structs.ts";
import { KVM_STRUCT_SIZE } from "../ffi/kvm/ioctls.ts";
import {
  decodeIoapic,
  decodePic,
  decodePitState,
  encodeIoapic,
  encodePic,
  encodePitState,
} from "../ffi/kvm/irqchip_structs.ts";
import { DenovisorError } from "../common/errors.ts";
import type { Persistable } from "../common/persist.ts";
import { Vcpu } from "./vcpu.ts";
import { parseVmState, type VmState, vmStateFrom } from "./vm_state.ts";

/** Number of IOAPIC pins KVM's in-kernel IOAPIC has. */
export const IOAPIC_PINS = 24;

/** The VM lacks a piece its state needs (the in-kernel irqchip or PIT). */
export class VmStateUnavailableError extends DenovisorError {
  constructor(message: string) {
    super("internal", message);
  }
}

/**
 * Told of each memory slot registered, replaced or deleted while dirty logging is on:
 * `previous` is what the slot was (KVM dropped its dirty log with it), `next` what it is
 * now (undefined: deleted).
 */
export type SlotChangeListener = (
  previous: Readonly<UserMemoryRegion> | undefined,
  next: Readonly<UserMemoryRegion> | undefined,
) => void;

/** A VM file descriptor and what hangs off it. */
export class Vm implements Disposable, Persistable<VmState> {
  #fd: number;
  readonly #runSize: number;
  readonly #slots = new Map<number, Readonly<UserMemoryRegion>>();
  #dirtyLog: SlotChangeListener | null = null;
  #hasIrqchip = false;
  #hasPit = false;

  constructor(fd: number, vcpuRunSize: number) {
    this.#fd = fd;
    this.#runSize = vcpuRunSize;
  }

  get fd(): number {
    return this.#fd;
  }

  /** Where KVM puts the three-page TSS it needs for real-mode guests on Intel. */
  setTssAddress(address: number): void {
    ioctlValue(this.#fd, KVM.SET_TSS_ADDR, address, "ioctl(KVM_SET_TSS_ADDR)");
  }

  setIdentityMapAddress(address: number): void {
    const value = new BigUint64Array([BigInt(address)]);
    ioctlBytes(
      this.#fd,
      KVM.SET_IDENTITY_MAP_ADDR,
      new Uint8Array(value.buffer),
      "ioctl(KVM_SET_IDENTITY_MAP_ADDR)",
    );
  }

  /** Creates the in-kernel PIC pair, IOAPIC and per-vCPU local APICs. */
  createIrqchip(): void {
    ioctlValue(this.#fd, KVM.CREATE_IRQCHIP, 0, "ioctl(KVM_CREATE_IRQCHIP)");
    this.#hasIrqchip = true;
  }

  /** Creates the in-kernel i8254 PIT. */
  createPit(): void {
    ioctlBytes(this.#fd, KVM.CREATE_PIT2, encodePitConfig(), "ioctl(KVM_CREATE_PIT2)");
    this.#hasPit = true;
  }

  /**
   * Maps (or with size 0 removes) a guest memory slot. While dirty logging is on, a
   * writable slot is registered with KVM_MEM_LOG_DIRTY_PAGES and the listener hears of it.
   */
  setUserMemoryRegion(region: UserMemoryRegion): void {
    const logged = this.#dirtyLog !== null && region.memorySize > 0 &&
      (region.flags & KVM_MEM_READONLY) === 0;
    const actual = logged ? { ...region, flags: region.flags | KVM_MEM_LOG_DIRTY_PAGES } : region;
    this.#register(actual);
    const previous = this.#slots.get(region.slot);
    if (region.memorySize === 0) this.#slots.delete(region.slot);
    else this.#slots.set(region.slot, { ...actual });
    this.#dirtyLog?.(previous, region.memorySize === 0 ? undefined : actual);
  }

  /** The memory slots registered now, by slot number (flags as KVM has them). */
  get memorySlots(): ReadonlyMap<number, Readonly<UserMemoryRegion>> {
    return this.#slots;
  }

  /**
   * Turns KVM's dirty log on for every writable slot, those registered later included,
   * `listener` hearing of each slot change from now on; `null` turns it off again. A
   * read-only slot (ROM, read-only shadow RAM) is not logged: the guest cannot write it.
   */
  logDirtyPages(listener: SlotChangeListener | null): void {
    const on = listener !== null;
    for (const [slot, region] of this.#slots) {
      if ((region.flags & KVM_MEM_READONLY) !== 0) continue;
      const flags = on
        ? region.flags | KVM_MEM_LOG_DIRTY_PAGES
        : region.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
      if (flags === region.flags) continue;
      const changed = { ...region, flags };
      this.#register(changed); // the same memory: KVM changes only the flags
      this.#slots.set(slot, changed);
    }
    this.#dirtyLog = listener;
  }

  #register(region: UserMemoryRegion): void {
    ioctlBytes(
      this.#fd,
      KVM.SET_USER_MEMORY_REGION,
      encodeUserMemoryRegion(region),
      "ioctl(KVM_SET_USER_MEMORY_REGION)",
    );
  }

  /** Sets the level of an interrupt line (GSI) of the in-kernel irqchip. */
  setIrqLine(irq: number, level: boolean): void {
    ioctlBytes(this.#fd, KVM.IRQ_LINE, encodeIrqLevel(irq, level ? 1 : 0), "ioctl(KVM_IRQ_LINE)");
  }

  /** Raises then lowers a line: an edge for an edge-triggered ISA interrupt. */
  pulseIrqLine(irq: number): void {
    this.setIrqLine(irq, true);
    this.setIrqLine(irq, false);
  }

  /** Makes writes to eventfd `fd` raise GSI `gsi` without a user-space exit. */
  registerIrqfd(fd: number, gsi: number, resampleFd?: number): void {
    const flags = resampleFd === undefined ? 0 : KVM_IRQFD_FLAG_RESAMPLE;
    ioctlBytes(
      this.#fd,
      KVM.IRQFD,
      encodeIrqfd({ fd, gsi, flags, resampleFd }),
      "ioctl(KVM_IRQFD)",
    );
  }

  unregisterIrqfd(fd: number, gsi: number): void {
    ioctlBytes(
      this.#fd,
      KVM.IRQFD,
      encodeIrqfd({ fd, gsi, flags: KVM_IRQFD_FLAG_DEASSIGN }),
      "ioctl(KVM_IRQFD)",
    );
  }

  /** Makes guest writes to a port or MMIO address signal an eventfd instead of exiting. */
  registerIoeventfd(event: Ioeventfd): void {
    ioctlBytes(this.#fd, KVM.IOEVENTFD, encodeIoeventfd(event), "ioctl(KVM_IOEVENTFD)");
  }

  unregisterIoeventfd(event: Ioeventfd): void {
    this.registerIoeventfd({ ...event, deassign: true });
  }

  /** Replaces the whole GSI routing table. */
  setGsiRouting(routes: IrqRoute[]): void {
    ioctlBytes(
      this.#fd,
      KVM.SET_GSI_ROUTING,
      encodeIrqRouting(routes),
      "ioctl(KVM_SET_GSI_ROUTING)",
    );
  }

  /**
   * The routing of a PC: GSIs 0-15 to both PICs and the IOAPIC (IRQ0 on pin 2), 16-23
   * to the IOAPIC only. KVM's own default sends IRQ0 to pin 0, which disagrees with the
   * MP table. Extra routes (MSI) are appended to this.
   */
  static defaultRoutes(): IrqRoute[] {
    const routes: IrqRoute[] = [];
    for (let gsi = 0; gsi < 16; gsi++) {
      if (gsi === 2) continue; // the PIC cascade
      const pic = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      routes.push({ gsi, kind: "irqchip", irqchip: pic, pin: gsi % 8 });
    }
    for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
      // The PIT's IRQ0 arrives on IOAPIC pin 2, as the MP table says (and as QEMU wires
      // it); GSI 2, the PIC cascade, has no IOAPIC pin then.
      if (gsi === 2) continue;
      const pin = gsi === 0 ? 2 : gsi;
      routes.push({ gsi, kind: "irqchip", irqchip: KVM_IRQCHIP_IOAPIC, pin });
    }
    return routes;
  }

  getClock(): ClockData {
    const bytes = new Uint8Array(KVM_STRUCT_SIZE.clock);
    ioctlBytes(this.#fd, KVM.GET_CLOCK, bytes, "ioctl(KVM_GET_CLOCK)");
    return decodeClock(bytes);
  }

  setClock(clock: ClockData): void {
    ioctlBytes(this.#fd, KVM.SET_CLOCK, encodeClock(clock), "ioctl(KVM_SET_CLOCK)");
  }

  /** Raw state of one irqchip (0: master PIC, 1: slave PIC, 2: IOAPIC). */
  getIrqchip(chipId: number): Uint8Array {
    const bytes = irqchipBuffer(chipId);
    ioctlBytes(this.#fd, KVM.GET_IRQCHIP, bytes, "ioctl(KVM_GET_IRQCHIP)");
    return bytes.slice(8);
  }

  setIrqchip(chipId: number, state: Uint8Array): void {
    ioctlBytes(this.#fd, KVM.SET_IRQCHIP, irqchipBuffer(chipId, state), "ioctl(KVM_SET_IRQCHIP)");
  }

  /** Raw struct kvm_pit_state2. */
  getPit(): Uint8Array {
    const bytes = new Uint8Array(KVM_STRUCT_SIZE.pitState2);
    ioctlBytes(this.#fd, KVM.GET_PIT2, bytes, "ioctl(KVM_GET_PIT2)");
    return bytes;
  }

  setPit(state: Uint8Array): void {
    ioctlBytes(this.#fd, KVM.SET_PIT2, state.slice(), "ioctl(KVM_SET_PIT2)");
  }

  /**
   * The VM-level KVM state. Every vCPU must be paused (or never started): the PIT and
   * irqchips must not change under the reads.
   */
  save(): VmState {
    this.#requireStatePieces("save");
    return vmStateFrom({
      clock: this.getClock(),
      pit: decodePitState(this.getPit()),
      pics: [KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE].map((id) =>
        decodePic(this.getIrqchip(id))
      ),
      ioapic: decodeIoapic(this.getIrqchip(KVM_IRQCHIP_IOAPIC)),
    });
  }

  /**
   * Loads a saved VM-level state into this VM, before any vCPU runs. The state is
   * untrusted: it is checked whole first (StateError), so a bad one changes nothing. The
   * clock, the PICs and the IOAPIC are loaded, then `between()` runs (the caller loads
   * the vCPUs' states there: their local APICs deliver into these irqchips), then the
   * PIT, last: it starts counting when loaded, and a tick it fires before the irqchips
   * and the local APICs are loaded is wiped by them; in its default (reinject) mode the
   * PIT then waits for the guest to acknowledge that tick and never fires again, so a
   * guest halted until its next timer interrupt sleeps for ever. It happened whenever
   * loading took longer than one PIT period (20 clones restoring on a loaded host).
   */
  restore(state: unknown, between: () => void = () => {}): void {
    const parts = parseVmState(state);
    this.#requireStatePieces("restore");
    this.setClock(parts.clock);
    this.setIrqchip(KVM_IRQCHIP_PIC_MASTER, encodePic(parts.pics[0]));
    this.setIrqchip(KVM_IRQCHIP_PIC_SLAVE, encodePic(parts.pics[1]));
    this.setIrqchip(KVM_IRQCHIP_IOAPIC, encodeIoapic(parts.ioapic));
    between();
    this.setPit(encodePitState(parts.pit));
  }

  #requireStatePieces(what: "save" | "restore"): void {
    if (!this.#hasIrqchip || !this.#hasPit) {
      throw new VmStateUnavailableError(
        `Cannot ${what} the VM state: the VM has no in-kernel ${
          this.#hasIrqchip ? "PIT" : "irqchip"
        }; create it (createIrqchip, createPit) first`,
      );
    }
  }

  /** Creates vCPU `id` (its APIC ID) and maps its kvm_run area. */
  createVcpu(id: number): Vcpu {
    const fd = ioctlValue(this.#fd, KVM.CREATE_VCPU, id, "ioctl(KVM_CREATE_VCPU)");
    return new Vcpu(id, fd, this.#runSize);
  }

  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
