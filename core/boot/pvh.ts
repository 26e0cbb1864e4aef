/**
 * Xen's x86/HVM direct boot ABI (PVH, xen/include/public/arch-x86/hvm/start_info.h): the
 * `hvm_start_info` a PVH kernel finds through EBX, followed by its memory map and the
 * module list that carries the initrd.
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { PVH_INFO_START, ZERO_PAGE_START } from "../layout.ts";
import { BootImageError } from "./boot_error.ts";
import type { E820Entry } from "./e820.ts";

/** hvm_start_info.magic ("xEn3" with bit 7 of the 'x' set). */
export const HVM_START_MAGIC = 0x336ec578;
/** Version 1 adds the memory map fields. */
export const HVM_START_VERSION = 1;
/** sizeof(struct hvm_start_info). */
export const HVM_START_INFO_SIZE = 56;
/** sizeof(struct hvm_memmap_table_entry). */
export const HVM_MEMMAP_ENTRY_SIZE = 24;
/** sizeof(struct hvm_modlist_entry). */
export const HVM_MODLIST_ENTRY_SIZE = 32;

/** Field offsets of hvm_start_info. */
export const HvmStartInfoOffset = {
  magic: 0,
  version: 4,
  flags: 8,
  nr_modules: 12,
  modlist_paddr: 16,
  cmdline_paddr: 24,
  rsdp_paddr: 32,
  memmap_paddr: 40,
  memmap_entries: 48,
  reserved: 52,
} as const;

/** What the loader hands a PVH kernel. */
export interface PvhConfig {
  readonly cmdlineAddress: number;
  readonly memoryMap: readonly E820Entry[];
  /** Passed as module 0, which Linux takes as its initrd. */
  readonly initrd?: { readonly address: number; readonly size: number };
  /** The ACPI RSDP, when the VMM wrote ACPI tables (else rsdp_paddr stays 0). */
  readonly acpiRsdp?: number;
}

/** Where each piece of the PVH start info went. */
export interface PvhLayout {
  /** Address of hvm_start_info: the value for EBX. */
  readonly startInfo: number;
  readonly memmap: number;
  readonly modlist?: number;
}

/**
 * Writes hvm_start_info at PVH_INFO_START, then the memory map (same entries and types as
 * e820), the RSDP's address when there are ACPI tables, and, with an initrd, a one-entry
 * module list.
 */
export function writePvhStartInfo(mem: GuestMemory, config: PvhConfig): PvhLayout {
  const O = HvmStartInfoOffset;
  const startInfo = PVH_INFO_START;
  const memmap = startInfo + HVM_START_INFO_SIZE;
  const modlist = memmap + config.memoryMap.length * HVM_MEMMAP_ENTRY_SIZE;
  const end = modlist + (config.initrd ? HVM_MODLIST_ENTRY_SIZE : 0);
  if (end > ZERO_PAGE_START) {
    throw new BootImageError(
      `PVH start info with ${config.memoryMap.length} memory map entries overflows into the zero page`,
    );
  }
  mem.fill(startInfo, end - startInfo, 0);
  mem.writeU32(startInfo + O.magic, HVM_START_MAGIC);
  mem.writeU32(startInfo + O.version, HVM_START_VERSION);
  mem.writeU64(startInfo + O.cmdline_paddr, config.cmdlineAddress);
  mem.writeU64(startInfo + O.rsdp_paddr, config.acpiRsdp ?? 0);
  mem.writeU64(startInfo + O.memmap_paddr, memmap);
  mem.writeU32(startInfo + O.memmap_entries, config.memoryMap.length);
  config.memoryMap.forEach((entry, i) => {
    const at = memmap + i * HVM_MEMMAP_ENTRY_SIZE;
    mem.writeU64(at, entry.addr);
    mem.writeU64(at + 8, entry.size);
    mem.writeU32(at + 16, entry.type);
  });
  if (!config.initrd) return { startInfo, memmap };
  mem.writeU32(startInfo + O.nr_modules, 1);
  mem.writeU64(startInfo + O.modlist_paddr, modlist);
  mem.writeU64(modlist, config.initrd.address);
  mem.writeU64(modlist + 8, config.initrd.size);
  // cmdline_paddr and reserved of the module entry stay 0: the initrd has no command line.
  return { startInfo, memmap, modlist };
}
