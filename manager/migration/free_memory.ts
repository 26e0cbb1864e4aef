/**
 * A destination refuses a guest it has no memory for before any page moves: its RAM
 * plus what its VMM itself takes must fit in the memory this host has available now
 * (MemAvailable: free memory and the caches the kernel can drop), not merely in its total,
 * or the copy would end in the OOM killer halfway through.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** What one VMM process takes beside its guest's RAM (Deno, its heap, device buffers). */
export const VMM_OVERHEAD_BYTES = 64 * 1024 * 1024;

const MIB = 1024 * 1024;

/** The memory this host has available now, in bytes (MemAvailable). */
export function availableMemoryBytes(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return Number.MAX_SAFE_INTEGER; // cannot tell: let the start itself fail
  }
}

/** Throws a `conflict` naming both figures when `guestBytes` does not fit here. */
export function checkFreeMemory(
  domain: string,
  guestBytes: number,
  availableBytes: number = availableMemoryBytes(),
): void {
  const needed = guestBytes + VMM_OVERHEAD_BYTES;
  if (needed <= availableBytes) return;
  throw new DenovisorError(
    "conflict",
    `Not enough free memory on the destination for '${domain}': it needs ` +
      `${Math.ceil(needed / MIB)} MiB (its RAM and ${VMM_OVERHEAD_BYTES / MIB} MiB for its VMM), ` +
      `${Math.floor(availableBytes / MIB)} MiB are available there; free memory there or ` +
      `migrate it to another host`,
  );
}
