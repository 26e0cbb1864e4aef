/**
 * Guest RAM allocation: host mappings registered with KVM as memory slots and wrapped in
 * a bounds-checked `GuestMemory`. A booted machine gets anonymous memory; a restored one
 * maps its memory file copy-on-write (`mapRamFile`), so restore time does not grow with
 * RAM size and machines restored from one file share its pages until they write.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import { fstat } from "../ffi/file_stat.ts";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/libc_symbols.ts";
import { bytesAtAddress, HOST_PAGE_SIZE, HostMapping } from "../ffi/mman.ts";
import { type GuestAddress, GuestMemory } from "./guest_memory.ts";
import type { Vm } from "./vm.ts";
import { handedFile } from "../common/handed_descriptors.ts";

/** A range of guest RAM to back with host memory. */
export interface RamRange {
  start: GuestAddress;
  size: number;
}

/** One mapped range, with the host address KVM and the vCPU Workers use. */
export interface MappedRange extends RamRange {
  hostAddress: bigint;
  /** Private anonymous memory (not a mapped memory file): untouched pages are zeroes. */
  anonymous?: boolean;
}

/** A memory file that does not fit the RAM it should back. */
export class GuestRamError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Where one RAM range's bytes are in a memory file. */
export interface FileRange {
  size: number;
  fileOffset: number;
}

/** Maps anonymous host memory for each range (untouched pages cost nothing). */
export function anonymousRam(ranges: readonly RamRange[]): HostMapping[] {
  const mappings: HostMapping[] = [];
  try {
    // Guest RAM is the guest's business: kept out of VMM core dumps, merged by KSM.
    for (const range of ranges) {
      mappings.push(HostMapping.anonymous(range.size, { guestRam: true }));
    }
  } catch (error) {
    mappings.forEach((mapping) => mapping.unmap());
    throw error;
  }
  return mappings;
}

/**
 * Maps each range of the memory file at `path` copy-on-write (MAP_PRIVATE), after
 * checking that it is a regular file of exactly `fileSize` bytes and that every range
 * lies inside it, page aligned: a shorter file would fault the guest with SIGBUS.
 */
export function mapRamFile(
  path: string,
  ranges: readonly FileRange[],
  fileSize: number,
): HostMapping[] {
  const fd = handedFile(path) ?? openFile(path, O_RDONLY | O_CLOEXEC);
  const mappings: HostMapping[] = [];
  try {
    const stat = fstat(fd);
    if (stat.kind !== "file" || stat.size !== fileSize) {
      throw new GuestRamError(
        `Memory file ${path} is ${
          stat.kind === "file" ? `${stat.size} bytes` : `a ${stat.kind}`
        }, ` +
          `the state describes a ${fileSize}-byte file: it does not belong to this state or was truncated`,
      );
    }
    for (const range of ranges) {
      const aligned = range.fileOffset % HOST_PAGE_SIZE === 0 && range.size % HOST_PAGE_SIZE === 0;
      if (!aligned || range.size <= 0 || range.fileOffset + range.size > fileSize) {
        throw new GuestRamError(
          `Memory file ${path}: the range at offset ${range.fileOffset} (${range.size} bytes) ` +
            `is not whole pages inside the file`,
        );
      }
      mappings.push(HostMapping.privateFile(fd, range.size, range.fileOffset, { guestRam: true }));
    }
  } catch (error) {
    mappings.forEach((mapping) => mapping.unmap());
    throw error;
  } finally {
    closeFd(fd); // each mapping holds the file
  }
  return mappings;
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
   * Registers each of `ranges` as a KVM memory slot, backed by `mappings` (one per range,
   * of its size; ownership passes here, even on failure) or, without them, by private
   * anonymous memory (`anonymousRam`).
   */
  static allocate(vm: Vm, ranges: RamRange[], mappings?: HostMapping[]): GuestRam {
    const mapped: MappedRange[] = [];
    let owned: HostMapping[] = [];
    try {
      owned = mappings ?? anonymousRam(ranges);
      if (owned.length !== ranges.length || owned.some((m, i) => m.size !== ranges[i].size)) {
        throw new GuestRamError("Guest RAM mappings do not match the machine's RAM ranges");
      }
      for (const [index, range] of ranges.entries()) {
        const hostAddress = owned[index].address;
        vm.setUserMemoryRegion({
          slot: mapped.length,
          flags: 0,
          guestPhysAddr: range.start,
          memorySize: range.size,
          userspaceAddr: hostAddress,
        });
        mapped.push({ ...range, hostAddress, anonymous: owned[index].anonymous });
      }
    } catch (error) {
      (mappings ?? owned).forEach((mapping) => mapping.unmap());
      throw error;
    }
    return new GuestRam(GuestRam.view(mapped), mapped, owned);
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
