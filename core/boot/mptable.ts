/**
 * The Intel MultiProcessor Specification 1.4 tables (floating pointer and configuration
 * table) that tell a guest without ACPI about its CPUs, its ISA bus and its IOAPIC. They sit
 * at MPTABLE_START, in the last KiB of base memory where Linux scans for "_MP_".
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import {
  IOAPIC_ADDRESS,
  LAPIC_ADDRESS,
  MPTABLE_END,
  MPTABLE_START,
  PCI_INTX_FIRST_GSI,
} from "../layout.ts";
import { BootImageError } from "./boot_error.ts";

/** MP spec revision 1.4. */
export const MP_SPEC_REV = 4;
export const MP_FLOATING_POINTER_SIZE = 16;
export const MP_CONFIG_HEADER_SIZE = 44;
export const MP_PROCESSOR_ENTRY_SIZE = 20;
/** Bus, I/O APIC, I/O interrupt and local interrupt entries are all 8 bytes. */
export const MP_SHORT_ENTRY_SIZE = 8;

/** Entry types of the base configuration table. */
export const MP_ENTRY_PROCESSOR = 0;
export const MP_ENTRY_BUS = 1;
export const MP_ENTRY_IOAPIC = 2;
export const MP_ENTRY_IO_INTERRUPT = 3;
export const MP_ENTRY_LOCAL_INTERRUPT = 4;
/** Interrupt types of interrupt assignment entries. */
export const MP_INT = 0;
export const MP_NMI = 1;
export const MP_EXTINT = 3;

/** Local APIC version KVM's in-kernel LAPIC reports (integrated xAPIC). */
export const LAPIC_VERSION = 0x14;
/** IOAPIC version of the 82093AA that KVM emulates. */
export const IOAPIC_VERSION = 0x11;
/** CPU signature and feature flags announced per processor (family 6; FPU and APIC). */
export const MP_CPU_SIGNATURE = 0x600;
export const MP_CPU_FEATURES = (1 << 0) | (1 << 9);
/** Destination "all local APICs" in local interrupt entries. */
export const ALL_LOCAL_APICS = 0xff;
/** The ISA IRQs described; IRQ 2 is the PIC cascade and gets no entry when IRQ 0 uses pin 2. */
export const ISA_IRQ_COUNT = 16;
/**
 * Interrupt entry flags for PCI INTx: polarity 3 (active low, bits 0-1) and trigger mode 3
 * (level, bits 2-3), as PCI interrupts are wired.
 */
export const MP_PCI_INTERRUPT_FLAGS = 0x3 | (0x3 << 2);
/** Most PCI interrupt entries: 32 slots of bus 0, four pins each. */
export const MP_MAX_PCI_INTERRUPTS = 32 * 4;

/** One PCI interrupt pin the MP table routes: pin `pin` (1 = INTA#) of bus 0 slot `slot`. */
export interface MpPciInterrupt {
  readonly slot: number;
  readonly pin: number;
}

/** Options of writeMpTable(). */
export interface MpTableOptions {
  /**
   * IOAPIC pin of ISA IRQ 0 (the PIT). 2 is the PC convention ("interrupt source override");
   * the VMM must then route GSI 2 to the PIT (KVM's default routing sends the PIT to pin 0).
   */
  readonly irq0Pin?: 0 | 2;
  /**
   * The PCI interrupt pins in use. When given (even empty), the table describes PCI bus 0
   * (MP bus id 0, the number Linux looks PCI buses up by; ISA becomes bus 1) with one
   * level-triggered, active-low entry per pin, routed to IOAPIC pin
   * PCI_INTX_FIRST_GSI + (slot + pin - 1) % 4 as the PCI bus wires them.
   */
  readonly pciIntx?: readonly MpPciInterrupt[];
}

/** Bytes of both MP structures for `cpus` processors. */
export function mpTableSize(cpus: number, options: MpTableOptions = {}): number {
  const isaInterrupts = (options.irq0Pin ?? 2) === 2 ? ISA_IRQ_COUNT - 1 : ISA_IRQ_COUNT;
  const pci = options.pciIntx === undefined ? 0 : 1 + options.pciIntx.length;
  return MP_FLOATING_POINTER_SIZE + MP_CONFIG_HEADER_SIZE + cpus * MP_PROCESSOR_ENTRY_SIZE +
    (2 + isaInterrupts + 2 + pci) * MP_SHORT_ENTRY_SIZE;
}

/**
 * Most processors the MP table can list: xAPIC IDs are 8 bits, 0xff is the broadcast ID
 * and the IOAPIC takes the ID after the last CPU; the table must fit its area too.
 */
export const MPTABLE_MAX_CPUS = Math.min(
  254,
  Math.floor(
    (MPTABLE_END - MPTABLE_START -
      mpTableSize(0, {
        irq0Pin: 0,
        pciIntx: new Array(MP_MAX_PCI_INTERRUPTS).fill({ slot: 0, pin: 1 }),
      })) / MP_PROCESSOR_ENTRY_SIZE,
  ),
);

/**
 * Writes the MP floating pointer and configuration table for `cpus` processors with APIC
 * ids 0..cpus-1 (0 is the boot processor) and one IOAPIC with id `cpus`. Returns the
 * address of the floating pointer.
 */
export function writeMpTable(mem: GuestMemory, cpus: number, options: MpTableOptions = {}): number {
  const irq0Pin = options.irq0Pin ?? 2;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MPTABLE_MAX_CPUS) {
    throw new BootImageError(
      `${cpus} vCPUs cannot be listed in the MP table; use 1 to ${MPTABLE_MAX_CPUS} vCPUs`,
    );
  }
  const pciIntx = options.pciIntx;
  if (pciIntx !== undefined) validatePciInterrupts(pciIntx);
  const pciBusId = 0;
  const isaBusId = pciIntx === undefined ? 0 : 1;
  const size = mpTableSize(cpus, options);
  const table = new Uint8Array(size);
  const view = new DataView(table.buffer);
  const configAddress = MPTABLE_START + MP_FLOATING_POINTER_SIZE;
  const ioapicId = cpus;

  // Floating pointer: feature byte 1 = 0 (a configuration table follows), byte 2 = 0 (no IMCR:
  // virtual wire mode).
  ascii(table, 0, "_MP_");
  view.setUint32(4, configAddress, true);
  table[8] = 1; // length in 16-byte units
  table[9] = MP_SPEC_REV;

  const c = MP_FLOATING_POINTER_SIZE;
  let at = c + MP_CONFIG_HEADER_SIZE;
  let entries = 0;
  for (let apicId = 0; apicId < cpus; apicId++) {
    table[at] = MP_ENTRY_PROCESSOR;
    table[at + 1] = apicId;
    table[at + 2] = LAPIC_VERSION;
    table[at + 3] = apicId === 0 ? 0x03 : 0x01; // EN, plus BP on the boot processor
    view.setUint32(at + 4, MP_CPU_SIGNATURE, true);
    view.setUint32(at + 8, MP_CPU_FEATURES, true);
    at += MP_PROCESSOR_ENTRY_SIZE;
    entries++;
  }
  if (pciIntx !== undefined) {
    table[at] = MP_ENTRY_BUS;
    table[at + 1] = pciBusId;
    ascii(table, at + 2, "PCI   ");
    at += MP_SHORT_ENTRY_SIZE;
    entries++;
  }
  table[at] = MP_ENTRY_BUS;
  table[at + 1] = isaBusId;
  ascii(table, at + 2, "ISA   ");
  at += MP_SHORT_ENTRY_SIZE;
  table[at] = MP_ENTRY_IOAPIC;
  table[at + 1] = ioapicId;
  table[at + 2] = IOAPIC_VERSION;
  table[at + 3] = 0x01; // EN
  view.setUint32(at + 4, IOAPIC_ADDRESS, true);
  at += MP_SHORT_ENTRY_SIZE;
  entries += 2;
  for (let irq = 0; irq < ISA_IRQ_COUNT; irq++) {
    if (irq === 2 && irq0Pin === 2) continue;
    // Flags 0: polarity and trigger conform to the ISA bus (active high, edge).
    table[at] = MP_ENTRY_IO_INTERRUPT;
    table[at + 1] = MP_INT;
    table[at + 4] = isaBusId;
    table[at + 5] = irq;
    table[at + 6] = ioapicId;
    table[at + 7] = irq === 0 ? irq0Pin : irq;
    at += MP_SHORT_ENTRY_SIZE;
    entries++;
  }
  for (const { slot, pin } of pciIntx ?? []) {
    table[at] = MP_ENTRY_IO_INTERRUPT;
    table[at + 1] = MP_INT;
    view.setUint16(at + 2, MP_PCI_INTERRUPT_FLAGS, true);
    table[at + 4] = pciBusId;
    table[at + 5] = (slot << 2) | (pin - 1); // Linux reads slot from bits 6:2, pin from 1:0
    table[at + 6] = ioapicId;
    // The swizzle the PCI bus applies (devices/pci pciIntxGsi()).
    table[at + 7] = PCI_INTX_FIRST_GSI + ((slot + pin - 1) % 4);
    at += MP_SHORT_ENTRY_SIZE;
    entries++;
  }
  for (const [type, lint] of [[MP_EXTINT, 0], [MP_NMI, 1]]) {
    table[at] = MP_ENTRY_LOCAL_INTERRUPT;
    table[at + 1] = type;
    table[at + 6] = ALL_LOCAL_APICS;
    table[at + 7] = lint;
    at += MP_SHORT_ENTRY_SIZE;
    entries++;
  }

  ascii(table, c, "PCMP");
  view.setUint16(c + 4, size - c, true); // base table length
  table[c + 6] = MP_SPEC_REV;
  ascii(table, c + 8, "DENOVISR"); // OEM id, 8 characters
  ascii(table, c + 16, "DENOVISOR   "); // product id, 12 characters
  view.setUint16(c + 34, entries, true);
  view.setUint32(c + 36, LAPIC_ADDRESS, true);
  table[c + 7] = checksum(table.subarray(c));
  table[10] = checksum(table.subarray(0, MP_FLOATING_POINTER_SIZE));
  mem.write(MPTABLE_START, table);
  return MPTABLE_START;
}

function validatePciInterrupts(interrupts: readonly MpPciInterrupt[]): void {
  const seen = new Set<number>();
  for (const { slot, pin } of interrupts) {
    const valid = Number.isInteger(slot) && slot >= 0 && slot < 32 && Number.isInteger(pin) &&
      pin >= 1 && pin <= 4;
    if (!valid || seen.has(slot * 4 + pin)) {
      throw new BootImageError(
        `PCI slot ${slot} pin ${pin} cannot be listed in the MP table; list each slot 0-31 ` +
          `and pin 1-4 (INTA#-INTD#) once`,
      );
    }
    seen.add(slot * 4 + pin);
  }
}

/** The byte that makes `bytes` sum to 0 modulo 256 (its own slot must hold 0). */
function checksum(bytes: Uint8Array): number {
  return (256 - bytes.reduce((sum, b) => (sum + b) & 0xff, 0)) & 0xff;
}

function ascii(target: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) target[at + i] = text.charCodeAt(i);
}
