/**
 * The PIIX3 PCI-to-ISA bridge function (8086:7000) SeaBIOS looks for: it programs the
 * PIRQ route control registers 0x60-0x63 (PIRQA-D to ISA IRQs 10, 10, 11, 11) and the
 * ELCR ports, and from then on reports PCI interrupt lines by that routing
 * (src/fw/pciinit.c, piix_isa_bridge_setup).
 *
 * The ELCR (0x4d0/0x4d1) belongs to KVM's in-kernel PIC. The routing is kept and
 * exposed (`pirqRoute`) for the VMM; INTx itself is wired to IOAPIC pins by the PCI bus,
 * which is what the ACPI `_PRT` tells an APIC-mode OS.
 *
 * @module
 */

import { type Persistable, StateReader } from "../../common/persist.ts";
import type { PciBar, PciCapability, PciFunction } from "../pci/pci_device.ts";
import { QEMU_SUBSYSTEM_ID, QEMU_SUBSYSTEM_VENDOR_ID } from "./i440fx.ts";

/** Intel 82371SB PIIX3 ISA bridge. */
export const PIIX3_VENDOR_ID = 0x8086;
export const PIIX3_DEVICE_ID = 0x7000;
/** PIRQA route control; PIRQB-D follow. */
export const PIIX_PIRQ_ROUTE = 0x60;
/** Bit 7 of a route register: the PIRQ is not routed. */
export const PIRQ_DISABLED = 0x80;
/** ISA IRQs a PIRQ may be routed to (PIIX3 datasheet, 2.2.13). */
const ROUTABLE_IRQS = new Set([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15]);
/** Top of memory register (ISA DMA), kept for the guest. */
const PIIX_TOM = 0x69;

/** Saved state: the four route registers and TOM. */
export interface Piix3State {
  readonly version: 1;
  readonly pirq: readonly number[];
  readonly tom: number;
}

/** The ISA bridge function. */
export class Piix3IsaBridge implements PciFunction, Persistable<Piix3State> {
  readonly vendorId = PIIX3_VENDOR_ID;
  readonly deviceId = PIIX3_DEVICE_ID;
  readonly subsystemVendorId = QEMU_SUBSYSTEM_VENDOR_ID;
  readonly subsystemId = QEMU_SUBSYSTEM_ID;
  readonly classCode = 0x060100;
  readonly revisionId = 0;
  readonly bars: readonly PciBar[] = [];
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0;
  readonly #pirq = new Uint8Array(4).fill(PIRQ_DISABLED);
  #tom = 0x02;

  attach(): void {}

  /** The ISA IRQ PIRQ `index` (0 = A) is routed to, or undefined when it is not routed. */
  pirqRoute(index: number): number | undefined {
    const value = this.#pirq[index];
    if (value === undefined || value & PIRQ_DISABLED) return undefined;
    const irq = value & 0x0f;
    return ROUTABLE_IRQS.has(irq) ? irq : undefined;
  }

  readConfig(offset: number): number {
    if (offset === PIIX_PIRQ_ROUTE) {
      return (this.#pirq[0] | (this.#pirq[1] << 8) | (this.#pirq[2] << 16) |
        (this.#pirq[3] << 24)) >>> 0;
    }
    if (offset === (PIIX_TOM & ~3)) return this.#tom << (8 * (PIIX_TOM & 3));
    return 0;
  }

  writeConfig(offset: number, value: number, mask: number): void {
    for (let b = 0; b < 4; b++) {
      if (((mask >>> (8 * b)) & 0xff) === 0) continue;
      const byte = (value >>> (8 * b)) & 0xff;
      const at = offset + b;
      // Bits 4-6 of a route register are reserved: they read as zero.
      if (at >= PIIX_PIRQ_ROUTE && at < PIIX_PIRQ_ROUTE + 4) {
        this.#pirq[at - PIIX_PIRQ_ROUTE] = byte & 0x8f;
      } else if (at === PIIX_TOM) this.#tom = byte & 0xfe;
    }
  }

  save(): Piix3State {
    return { version: 1, pirq: [...this.#pirq], tom: this.#tom };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const pirq = reader.integers("pirq", 0, 0xff, { exact: 4 });
    const tom = reader.integer("tom", 0, 0xff);
    pirq.forEach((value, i) => (this.#pirq[i] = value & 0x8f));
    this.#tom = tom & 0xfe;
  }
}
