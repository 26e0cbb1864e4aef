/**
 * Identity page tables for the Linux 64-bit entry, which must start with paging on: one
 * PML4 entry, four PDPT entries and four page directories of 2 MiB pages mapping the first
 * 4 GiB, enough for the kernel, the initrd and the boot structures.
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { CMDLINE_START, PD_START, PDPT_START, PML4_START } from "../layout.ts";

/** Present and writable. */
const PAGE_PRESENT_RW = 0x3n;
/** Present, writable, 2 MiB page (PS). */
const LARGE_PAGE = 0x83n;
const PAGE_TABLE_ENTRIES = 512;
const TWO_MIB = 0x20_0000;
/** Page directories written, one per GiB. */
export const IDENTITY_MAPPED_GIB = 4;
/** First byte past the last page directory. */
export const PAGE_TABLES_END = PD_START + IDENTITY_MAPPED_GIB * 0x1000;

/** Writes the identity map and returns the PML4 address (the value for CR3). */
export function writeIdentityPageTables(mem: GuestMemory): number {
  if (PAGE_TABLES_END > CMDLINE_START) {
    throw new RangeError("The boot page directories run into the command line");
  }
  mem.fill(PML4_START, 0x1000, 0);
  mem.fill(PDPT_START, 0x1000, 0);
  mem.writeU64(PML4_START, BigInt(PDPT_START) | PAGE_PRESENT_RW);
  for (let gib = 0; gib < IDENTITY_MAPPED_GIB; gib++) {
    const pd = PD_START + gib * 0x1000;
    mem.writeU64(PDPT_START + gib * 8, BigInt(pd) | PAGE_PRESENT_RW);
    for (let i = 0; i < PAGE_TABLE_ENTRIES; i++) {
      const physical = (gib * PAGE_TABLE_ENTRIES + i) * TWO_MIB;
      mem.writeU64(pd + i * 8, BigInt(physical) | LARGE_PAGE);
    }
  }
  return PML4_START;
}
