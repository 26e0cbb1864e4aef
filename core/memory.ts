/**
 * Guest RAM allocation: anonymous host mappings registered with KVM as memory slots and
 * wrapped in a bounds-checked `GuestMemory`.
 *
 * @module
 */

import { bytesAtAddress, HostMapping } from "../ffi/mman.ts";
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
  #mappings: HostMapping[];

  private constructor(memory: GuestMemory, ranges: MappedRange[], mappings: HostMapping[]) {
    this.memory = memory;
    this.ranges = ranges;
    this.#mappings = mappings;
  }

  /**
   * Maps `ranges` as private anonymous memory (reserved lazily: untouched guest pages
   * cost nothing) and registers each as a KVM memory slot.
   */
  static allocate(vm: Vm, ranges: RamRange[]): GuestRam {
    const mappings: HostMapping[] = [];
    const mapped: MappedRange[] = [];
    try {
      for (const range of ranges) {
        // Guest RAM is the guest's business: kept out of VMM core dumps, merged by KSM.
        const mapping = HostMapping.anonymous(range.size, { guestRam: true });
        mappings.push(mapping);
        const hostAddress = mapping.address;
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
      mappings.forEach((mapping) => mapping.unmap());
      throw error;
    }
    return new GuestRam(GuestRam.view(mapped), mapped, mappings);
  }

  /** A `GuestMemory` over ranges mapped by another thread (the vCPU Workers use this). */
  static view(ranges: readonly MappedRange[]): GuestMemory {
    return new GuestMemory(ranges.map((r) => ({
      start: r.start,
      bytes: bytesAtAddress(r.hostAddress, r.size),
    })));
  }

  /** Unmaps the host memory; the VM must be closed (or its slots removed) first. */
  close(): void {
    this.#mappings.forEach((mapping) => mapping.unmap());
    this.#mappings = [];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
