/**
 * The Linux x86 "zero page" (`struct boot_params`, Documentation/arch/x86/zero-page.rst)
 * for the 64-bit boot protocol: the kernel's setup header plus what the loader fills in
 * (loader type, command line, initrd, e820 map).
 *
 * No CAN_USE_HEAP/heap_end_ptr: they describe the real-mode setup code's heap, and the
 * 64-bit entry skips that code.
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { ZERO_PAGE_START } from "../layout.ts";
import { BootImageError } from "./boot_error.ts";
import { E820_MAX_ENTRIES, type E820Entry } from "./e820.ts";
import {
  BOOT_FLAG_MAGIC,
  BOOT_PROTOCOL_64BIT,
  HEADER_MAGIC,
  LOADER_TYPE_UNDEFINED,
  SETUP_HEADER_AREA_END,
  SETUP_HEADER_START,
  SetupHeaderOffset,
} from "./setup_header.ts";

/** Size of boot_params: one page. */
export const BOOT_PARAMS_SIZE = 0x1000;
/** Size of one packed `struct boot_e820_entry` (u64 addr, u64 size, u32 type). */
export const E820_ENTRY_SIZE = 20;

/** Offsets in boot_params used here: zero-page.rst fields, then the setup header's. */
export const BootParamsOffset = {
  acpi_rsdp_addr: 0x070,
  ext_ramdisk_image: 0x0c0,
  ext_ramdisk_size: 0x0c4,
  ext_cmd_line_ptr: 0x0c8,
  e820_entries: 0x1e8,
  sentinel: 0x1ef,
  hdr: SETUP_HEADER_START,
  e820_table: 0x2d0,
  ...SetupHeaderOffset,
} as const;

/** The runtime alignment Linux x86-64 uses by default (CONFIG_PHYSICAL_ALIGN); for vmlinux. */
const DEFAULT_KERNEL_ALIGNMENT = 0x1000000;

/** What the loader puts in boot_params. */
export interface BootParamsConfig {
  /** The bzImage's setup header (bytes from 0x1f1); omitted for a vmlinux. */
  readonly setupHeader?: Uint8Array;
  /** Guest address of the NUL-terminated command line. */
  readonly cmdlineAddress: number;
  /** Longest command line the kernel accepts (written for a vmlinux, which has no header). */
  readonly cmdlineSize: number;
  readonly initrd?: { readonly address: number; readonly size: number };
  readonly e820: readonly E820Entry[];
  /** The ACPI RSDP, when the VMM wrote ACPI tables (the kernel scans for it otherwise). */
  readonly acpiRsdp?: number;
}

/**
 * Writes boot_params at ZERO_PAGE_START and returns that address (the 64-bit entry takes it
 * in RSI).
 */
export function writeBootParams(mem: GuestMemory, config: BootParamsConfig): number {
  const base = ZERO_PAGE_START;
  const O = BootParamsOffset;
  if (config.e820.length > E820_MAX_ENTRIES) {
    throw new BootImageError(
      `e820 map has ${config.e820.length} entries; boot_params holds at most ${E820_MAX_ENTRIES}`,
    );
  }
  mem.fill(base, BOOT_PARAMS_SIZE, 0);
  if (config.setupHeader) {
    if (SETUP_HEADER_START + config.setupHeader.length > SETUP_HEADER_AREA_END) {
      throw new BootImageError(
        `setup header of ${config.setupHeader.length} bytes overflows its place in boot_params`,
      );
    }
    mem.write(base + O.hdr, config.setupHeader);
  } else {
    // A vmlinux has no setup header: give the kernel the fields a bzImage would carry.
    mem.writeU16(base + O.boot_flag, BOOT_FLAG_MAGIC);
    mem.writeU32(base + O.header, HEADER_MAGIC);
    mem.writeU16(base + O.version, BOOT_PROTOCOL_64BIT);
    mem.writeU32(base + O.kernel_alignment, DEFAULT_KERNEL_ALIGNMENT);
    mem.writeU32(base + O.cmdline_size, config.cmdlineSize);
  }
  mem.writeU8(base + O.type_of_loader, LOADER_TYPE_UNDEFINED);
  writeSplit(mem, base + O.cmd_line_ptr, base + O.ext_cmd_line_ptr, config.cmdlineAddress);
  if (config.initrd) {
    writeSplit(mem, base + O.ramdisk_image, base + O.ext_ramdisk_image, config.initrd.address);
    writeSplit(mem, base + O.ramdisk_size, base + O.ext_ramdisk_size, config.initrd.size);
  }
  if (config.acpiRsdp !== undefined) mem.writeU64(base + O.acpi_rsdp_addr, config.acpiRsdp);
  mem.writeU8(base + O.e820_entries, config.e820.length);
  config.e820.forEach((entry, i) => {
    const at = base + O.e820_table + i * E820_ENTRY_SIZE;
    mem.writeU64(at, entry.addr);
    mem.writeU64(at + 8, entry.size);
    mem.writeU32(at + 16, entry.type);
  });
  return base;
}

/** Writes a 64-bit value as boot_params stores it: low half in one field, high in another. */
function writeSplit(mem: GuestMemory, lowAt: number, highAt: number, value: number): void {
  mem.writeU32(lowAt, value % 0x1_0000_0000);
  mem.writeU32(highAt, Math.floor(value / 0x1_0000_0000));
}
