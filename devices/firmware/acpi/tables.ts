/**
 * The fixed-layout ACPI tables (ACPI 6.5, chapter 5): the common header and checksum,
 * RSDP, RSDT/XSDT, FADT, FACS and MADT. Pointers between tables are left as offsets for
 * the linker (`table_loader.ts`) to turn into addresses, so a table is built once and
 * placed by whoever loads it: SeaBIOS through fw_cfg, or the VMM for a direct boot.
 *
 * @module
 */

import { IOAPIC_ADDRESS, LAPIC_ADDRESS } from "../../../core/layout.ts";

/** OEM ID in every table header (6 bytes). */
export const ACPI_OEM_ID = "DENOVI";
/** OEM table ID (8 bytes). */
export const ACPI_OEM_TABLE_ID = "DENOVISR";
/** Length of the common table header. */
export const ACPI_HEADER_SIZE = 36;
/** Offset of the checksum byte in the common header. */
export const ACPI_CHECKSUM_OFFSET = 9;

/** The PIIX4-style ACPI register block the tables describe (see devices/chipset). */
export interface PmLayout {
  /** I/O base of PM1a_EVT (status, enable), PM1a_CNT at +4, PM timer at +8, GPE0 at +0x0c. */
  readonly base: number;
  /** The SCI's ISA IRQ (level-triggered, active high). */
  readonly sciIrq: number;
  /** Reset register: an I/O port and the value written to it. */
  readonly resetPort: number;
  readonly resetValue: number;
}

/** PM1a_EVT_BLK at base, PM1a_CNT_BLK, PM_TMR_BLK and GPE0_BLK after it. */
export const PM1_CNT_OFFSET = 4;
export const PM_TMR_OFFSET = 8;
export const GPE0_OFFSET = 0x0c;
/** Bytes of the whole block. */
export const PM_BLOCK_SIZE = 0x10;

/** The sum of `bytes`, modulo 256. */
export function byteSum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return sum;
}

/** Sets the checksum byte at `offset` so that `bytes` sums to 0. */
export function fixChecksum(bytes: Uint8Array, offset = ACPI_CHECKSUM_OFFSET): void {
  bytes[offset] = 0;
  bytes[offset] = (0x100 - byteSum(bytes)) & 0xff;
}

/** A table of `length` bytes with its header filled in (checksum left to the caller). */
export function tableWithHeader(signature: string, length: number, revision: number): Uint8Array {
  const table = new Uint8Array(length);
  const view = new DataView(table.buffer);
  const ascii = (text: string, at: number) => table.set(new TextEncoder().encode(text), at);
  ascii(signature, 0);
  view.setUint32(4, length, true);
  table[8] = revision;
  ascii(ACPI_OEM_ID, 10);
  ascii(ACPI_OEM_TABLE_ID, 16);
  view.setUint32(24, 1, true); // OEM revision
  ascii("DNVS", 28); // creator ID
  view.setUint32(32, 1, true);
  return table;
}

/** RSDP revision 2 (36 bytes); the RSDT (offset 16) and XSDT (24) pointers are the linker's. */
export function rsdp(): Uint8Array {
  const table = new Uint8Array(36);
  table.set(new TextEncoder().encode("RSD PTR "));
  table.set(new TextEncoder().encode(ACPI_OEM_ID), 9);
  table[15] = 2;
  new DataView(table.buffer).setUint32(20, 36, true);
  return table;
}
/** Offsets of the RSDP's pointers and checksums. */
export const RSDP_RSDT_OFFSET = 16;
export const RSDP_XSDT_OFFSET = 24;
export const RSDP_CHECKSUM_OFFSET = 8;
export const RSDP_EXT_CHECKSUM_OFFSET = 32;

/** RSDT with `count` 32-bit entries (pointers filled by the linker); entry i at 36 + 4i. */
export function rsdt(count: number): Uint8Array {
  return tableWithHeader("RSDT", ACPI_HEADER_SIZE + 4 * count, 1);
}

/** XSDT with `count` 64-bit entries; entry i at 36 + 8i. */
export function xsdt(count: number): Uint8Array {
  return tableWithHeader("XSDT", ACPI_HEADER_SIZE + 8 * count, 1);
}

/** FACS (64 bytes): required by the FADT, holds the firmware waking vector and the lock. */
export function facs(): Uint8Array {
  const table = new Uint8Array(64);
  table.set(new TextEncoder().encode("FACS"));
  new DataView(table.buffer).setUint32(4, 64, true);
  table[32] = 2; // version
  return table; // the FACS has no checksum
}

/** FADT field offsets the linker patches. */
export const FADT_FIRMWARE_CTRL_OFFSET = 36;
export const FADT_DSDT_OFFSET = 40;
export const FADT_X_DSDT_OFFSET = 140;
/** FADT revision 3 (ACPI 2.0 layout, 244 bytes): understood by every OS since 2000. */
const FADT_SIZE = 244;

/**
 * FADT: SCI, the PM1 event and control blocks, the PM timer, GPE0, the fixed power
 * button (no sleep button), a reset register, and "the system is always in ACPI mode"
 * (SMI_CMD 0, so no handshake is needed).
 */
export function fadt(pm: PmLayout): Uint8Array {
  const table = tableWithHeader("FACP", FADT_SIZE, 3);
  const view = new DataView(table.buffer);
  table[45] = 0; // preferred PM profile: unspecified
  view.setUint16(46, pm.sciIrq, true);
  view.setUint32(56, pm.base, true); // PM1a_EVT_BLK
  view.setUint32(64, pm.base + PM1_CNT_OFFSET, true); // PM1a_CNT_BLK
  view.setUint32(76, pm.base + PM_TMR_OFFSET, true); // PM_TMR_BLK
  view.setUint32(80, pm.base + GPE0_OFFSET, true); // GPE0_BLK
  table[88] = 4; // PM1_EVT_LEN
  table[89] = 2; // PM1_CNT_LEN
  table[91] = 4; // PM_TMR_LEN
  table[92] = 4; // GPE0_BLK_LEN: status and enable, two bytes each
  view.setUint16(96, 0x65, true); // P_LVL2_LAT > 100: C2 not supported
  view.setUint16(98, 0x3e9, true); // P_LVL3_LAT > 1000: C3 not supported
  // IAPC_BOOT_ARCH: legacy devices and an 8042.
  view.setUint16(109, 0x0003, true);
  // Flags: WBINVD (0), PROC_C1 (2), SLP_BUTTON as none (5), RESET_REG_SUP (10).
  view.setUint32(112, (1 << 0) | (1 << 2) | (1 << 5) | (1 << 10), true);
  gas(table, 116, 1, 8, 0, 1, pm.resetPort); // RESET_REG: system I/O, byte access
  table[128] = pm.resetValue;
  gas(table, 148, 1, 32, 0, 2, pm.base); // X_PM1a_EVT_BLK
  gas(table, 172, 1, 16, 0, 2, pm.base + PM1_CNT_OFFSET); // X_PM1a_CNT_BLK
  gas(table, 208, 1, 32, 0, 3, pm.base + PM_TMR_OFFSET); // X_PM_TMR_BLK
  gas(table, 220, 1, 32, 0, 1, pm.base + GPE0_OFFSET); // X_GPE0_BLK
  return table;
}

/** A Generic Address Structure (12 bytes) at `at`. */
function gas(
  table: Uint8Array,
  at: number,
  space: number,
  bitWidth: number,
  bitOffset: number,
  accessSize: number,
  address: number,
): void {
  table.set([space, bitWidth, bitOffset, accessSize], at);
  new DataView(table.buffer).setBigUint64(at + 4, BigInt(address), true);
}

/** What the MADT describes. */
export interface MadtOptions {
  /** Number of vCPUs: local APIC IDs and ACPI processor UIDs 0..cpus-1. */
  readonly cpus: number;
  /** The SCI's ISA IRQ, overridden to level-triggered, active high. */
  readonly sciIrq: number;
  /** IOAPIC pin of ISA IRQ 0 (the PIT): 2 on a PC (Vm.defaultRoutes). */
  readonly irq0Gsi?: number;
}

/**
 * MADT: one enabled local APIC per vCPU, the IOAPIC (GSIs from 0), overrides for IRQ 0
 * (to pin 2) and the SCI, and LINT1 as NMI on every processor.
 */
export function madt(options: MadtOptions): Uint8Array {
  const entries: number[][] = [];
  for (let cpu = 0; cpu < options.cpus; cpu++) entries.push([0, 8, cpu, cpu, 1, 0, 0, 0]);
  const ioapic = [1, 12, 0, 0, ...u32(IOAPIC_ADDRESS), ...u32(0)];
  entries.push(ioapic);
  const irq0Gsi = options.irq0Gsi ?? 2;
  if (irq0Gsi !== 0) entries.push([2, 10, 0, 0, ...u32(irq0Gsi), 0, 0]);
  // Flags 0x000d: active high (01), level-triggered (11 << 2).
  entries.push([2, 10, 0, options.sciIrq, ...u32(options.sciIrq), 0x0d, 0]);
  entries.push([4, 6, 0xff, 0, 0, 1]); // local APIC NMI: all processors, LINT1
  const body = entries.flat();
  const table = tableWithHeader("APIC", ACPI_HEADER_SIZE + 8 + body.length, 3);
  const view = new DataView(table.buffer);
  view.setUint32(36, LAPIC_ADDRESS, true);
  view.setUint32(40, 1, true); // PCAT_COMPAT: the machine also has 8259 PICs
  table.set(body, ACPI_HEADER_SIZE + 8);
  return table;
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24];
}
