/**
 * The guest's RAM layout and the e820 memory map that describes it. The VMM maps exactly
 * the regions of guestRamRegions() and the kernel sees exactly e820Map() of the same size,
 * so the two can never disagree.
 *
 * @module
 */

import { EBDA_START, HIGH_RAM_START, HIMEM_START, MMIO_HOLE_START } from "../layout.ts";
import { BootImageError, mib } from "./boot_error.ts";

/** e820 entry types (ACPI address range types). */
export const E820_RAM = 1;
export const E820_RESERVED = 2;
/** boot_params holds at most this many e820 entries. */
export const E820_MAX_ENTRIES = 128;
/** Smallest guest Denovisor lays out: low memory, the legacy hole and some high memory. */
export const MIN_GUEST_RAM = 2 * 1024 * 1024;

/** One e820 entry: `size` bytes from `addr` of the given type. */
export interface E820Entry {
  readonly addr: number;
  readonly size: number;
  readonly type: number;
}

/** A range of guest physical address space backed by RAM. */
export interface RamRegion {
  readonly start: number;
  readonly size: number;
}

/**
 * The guest RAM regions the VMM maps for `ramSize` bytes: from 0 up to the 32-bit MMIO
 * hole, and whatever did not fit from HIGH_RAM_START (4 GiB) on.
 */
export function guestRamRegions(ramSize: number): RamRegion[] {
  if (!Number.isSafeInteger(ramSize) || ramSize < MIN_GUEST_RAM) {
    throw new BootImageError(
      `guest memory of ${mib(ramSize)} MiB is too small; give the guest at least ${
        mib(MIN_GUEST_RAM)
      } MiB`,
    );
  }
  const low = Math.min(ramSize, MMIO_HOLE_START);
  const regions: RamRegion[] = [{ start: 0, size: low }];
  if (ramSize > low) regions.push({ start: HIGH_RAM_START, size: ramSize - low });
  return regions;
}

/**
 * The e820 map for `ramSize` bytes of guest RAM: usable low memory below the EBDA, the
 * EBDA/VGA/BIOS area reserved (the MP table lives there), RAM from 1 MiB to the MMIO hole
 * and RAM above 4 GiB.
 */
export function e820Map(ramSize: number): E820Entry[] {
  const [low, high] = guestRamRegions(ramSize);
  const entries: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: HIMEM_START - EBDA_START, type: E820_RESERVED },
    { addr: HIMEM_START, size: low.size - HIMEM_START, type: E820_RAM },
  ];
  if (high) entries.push({ addr: high.start, size: high.size, type: E820_RAM });
  return entries;
}

/** End of the RAM region that starts at 0 (RAM below the MMIO hole). */
export function lowRamEnd(ramSize: number): number {
  return guestRamRegions(ramSize)[0].size;
}
