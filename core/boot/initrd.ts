/**
 * Where the initrd goes: as high as possible (out of the kernel's way while it decompresses
 * and sets up its memory), page aligned, below the kernel's limit and the end of low RAM.
 *
 * @module
 */

import { HIMEM_START, MMIO_HOLE_END } from "../layout.ts";
import { BootImageError, hex, mib } from "./boot_error.ts";

const PAGE_SIZE = 0x1000;

/** What placeInitrd() needs to know. */
export interface InitrdPlacement {
  readonly initrdSize: number;
  /** First byte past everything the kernel occupies or needs while booting. */
  readonly kernelEnd: number;
  /** End of the RAM region that starts at 0 (RAM below the MMIO hole). */
  readonly lowRamEnd: number;
  /** Total guest RAM, for the error message. */
  readonly guestRamSize: number;
  /** bzImage initrd_addr_max: the highest address the initrd's last byte may use. */
  readonly initrdAddrMax?: number;
}

/** The guest physical address for the initrd; throws BootImageError when it does not fit. */
export function placeInitrd(placement: InitrdPlacement): number {
  const { initrdSize, kernelEnd, lowRamEnd, guestRamSize, initrdAddrMax } = placement;
  if (initrdSize <= 0) throw new BootImageError("initrd is empty; pass a cpio archive");
  const kernelLimit = initrdAddrMax === undefined ? MMIO_HOLE_END : initrdAddrMax + 1;
  const end = Math.min(lowRamEnd, kernelLimit, MMIO_HOLE_END);
  const address = Math.floor((end - initrdSize) / PAGE_SIZE) * PAGE_SIZE;
  const lowest = Math.ceil(kernelEnd / PAGE_SIZE) * PAGE_SIZE;
  if (address >= lowest) return address;
  const sizes = `kernel (${mib(kernelEnd - HIMEM_START)} MiB) and initrd (${mib(initrdSize)} MiB)`;
  if (kernelLimit < lowRamEnd) {
    throw new BootImageError(
      `${sizes} do not fit below the kernel's initrd_addr_max ${
        hex(initrdAddrMax!)
      }; use a smaller initrd`,
    );
  }
  throw new BootImageError(
    `${sizes} do not fit in ${mib(guestRamSize)} MiB of guest memory`,
    "raise",
  );
}
