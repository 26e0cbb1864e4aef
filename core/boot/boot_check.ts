/**
 * A dry run of the boot layout: loads a kernel and initrd into scratch memory the size of
 * the guest's RAM and writes the boot structures, exactly as a start would, so that a
 * kernel that does not fit (too little memory, a bad image) is refused before a VM exists.
 * The daemon runs it when a domain starts; the scratch mapping is reserved lazily, so only
 * the pages the kernel and boot structures touch cost anything, and it is unmapped after.
 *
 * @module
 */

import { bytesAt, mmap, munmap } from "../../ffi/libc.ts";
import {
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/libc_symbols.ts";
import { GuestMemory } from "../guest_memory.ts";
import { guestRamRegions } from "./e820.ts";
import { type BootConfig, configureBoot } from "./linux_boot.ts";

/**
 * Throws the `BootImageError` a start would throw for `config` in a guest of
 * `memoryBytes`; returns the first byte past what the kernel needs.
 */
export function checkBootFits(config: BootConfig, memoryBytes: number): number {
  const regions = guestRamRegions(memoryBytes);
  const mappings: { pointer: Deno.PointerObject; size: number }[] = [];
  try {
    for (const region of regions) {
      const pointer = mmap(
        region.size,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      );
      mappings.push({ pointer, size: region.size });
    }
    const memory = new GuestMemory(
      regions.map((region, i) => ({
        start: region.start,
        bytes: bytesAt(mappings[i].pointer, region.size),
      })),
    );
    return configureBoot(memory, config).kernelEnd;
  } finally {
    for (const { pointer, size } of mappings) munmap(pointer, size);
  }
}
