/**
 * Guest RAM allocation: anonymous host mappings registered with KVM as memory slots and
 * wrapped in a bounds-checked `GuestMemory`.
 *
 * @module
 */

import { bytesAt, libc, mmap, munmap, pointerValue } from "../ffi/libc.ts";
import {
  MADV_DONTDUMP,
  MADV_MERGEABLE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/libc_symbols.ts";
import { type GuestAddress, GuestMemory } from "./guest_memory.ts";
import type { Vm } from "./vm.ts";

/** A range of guest RAM to back with host memory. */
export interface RamRange {
  start: GuestAddress;
  size: number;
}

/** One mapped range, with the host address KVM and the vCPU Workers use. */
export interface MappedRange extends RamRange {
  hostAddress: bigint;
}

/** Guest RAM mapped into this process and into the VM. */
export class GuestRam implements Disposable {
  readonly memory: GuestMemory;
  readonly ranges: readonly MappedRange[];
  #pointers: Deno.PointerObject[];

  private constructor(memory: GuestMemory, ranges: MappedRange[], pointers: Deno.PointerObject[]) {
    this.memory = memory;
    this.ranges = ranges;
    this.#pointers = pointers;
  }

  /**
   * Maps `ranges` as private anonymous memory (reserved lazily: untouched guest pages
   * cost nothing) and registers each as a KVM memory slot.
   */
  static allocate(vm: Vm, ranges: RamRange[]): GuestRam {
    const pointers: Deno.PointerObject[] = [];
    const mapped: MappedRange[] = [];
    try {
      for (const range of ranges) {
        const pointer = mmap(
          range.size,
          PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
        );
        pointers.push(pointer);
        // Guest RAM is the guest's business: keep it out of VMM core dumps, and let KSM merge it.
        libc().madvise(pointer, BigInt(range.size), MADV_DONTDUMP);
        libc().madvise(pointer, BigInt(range.size), MADV_MERGEABLE);
        const hostAddress = pointerValue(pointer);
        vm.setUserMemoryRegion({
          slot: mapped.length,
          flags: 0,
          guestPhysAddr: range.start,
          memorySize: range.size,
          userspaceAddr: hostAddress,
        });
        mapped.push({ ...range, hostAddress });
      }
    } catch (error) {
      pointers.forEach((p, i) => munmap(p, ranges[i].size));
      throw error;
    }
    return new GuestRam(GuestRam.view(mapped), mapped, pointers);
  }

  /** A `GuestMemory` over ranges mapped by another thread (the vCPU Workers use this). */
  static view(ranges: readonly MappedRange[]): GuestMemory {
    return new GuestMemory(ranges.map((r) => ({
      start: r.start,
      bytes: bytesAt(Deno.UnsafePointer.create(r.hostAddress)!, r.size),
    })));
  }

  /** Unmaps the host memory; the VM must be closed (or its slots removed) first. */
  close(): void {
    this.#pointers.forEach((p, i) => munmap(p, this.ranges[i].size));
    this.#pointers = [];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
