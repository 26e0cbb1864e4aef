/**
 * The guest physical ranges below 1 MiB that the VMM fills with boot structures. Loaders
 * refuse kernel segments that would overlap them, since either the kernel or the boot
 * structures would be silently overwritten.
 *
 * @module
 */

import {
  BOOT_GDT_START,
  CMDLINE_MAX_SIZE,
  CMDLINE_START,
  EBDA_START,
  HIMEM_START,
} from "../layout.ts";

/** A named half-open range `[start, end)` of guest physical memory. */
export interface BootArea {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** Where the VMM writes boot structures, lowest first. */
export const VMM_BOOT_AREAS: readonly BootArea[] = [
  {
    name: "GDT, start info, zero page, stack and page tables",
    start: BOOT_GDT_START,
    end: CMDLINE_START,
  },
  { name: "command line", start: CMDLINE_START, end: CMDLINE_START + CMDLINE_MAX_SIZE },
  {
    name: "EBDA, legacy hole and BIOS area (ACPI tables, MP table)",
    start: EBDA_START,
    end: HIMEM_START,
  },
];

/** The first VMM boot area that `[start, end)` overlaps, if any. */
export function overlappingBootArea(start: number, end: number): BootArea | undefined {
  return VMM_BOOT_AREAS.find((area) => start < area.end && area.start < end);
}
