/**
 * The shadow RAM at 0xC0000-0xFFFFF as an i440FX's PAM registers make it, with KVM memory
 * slots: the RAM behind each range one PAM nibble controls (16 KiB in the C, D and E
 * segments, 64 KiB for the F segment) is its own slot, so a PAM change re-registers only
 * that slot, and the guest's reads never leave KVM:
 *
 * - read-write: the RAM, writable;
 * - read-only: the RAM as a read-only slot; a write exits to the VMM and is dropped (a
 *   BIOS locked after POST stays intact whatever an OS writes there);
 * - write-only: reads from the ROM (a read-only slot on the firmware image's legacy copy),
 *   writes exit and land in the RAM behind it (the BIOS copying itself);
 * - rom: reads from the ROM, writes dropped.
 *
 * Only the last 128 KiB of the area have ROM behind them (the image's tail, at 0xE0000);
 * in the C and D segments "ROM" means the PCI bus, which has no option ROMs here: reads
 * give 0xff from this device, as from an empty bus.
 *
 * Writes that KVM passes out come here as MMIO (`BusDevice`, registered for the whole
 * area), as KVM does for every write to a read-only slot.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import { KVM_MEM_READONLY } from "../ffi/kvm/vm_structs.ts";
import {
  BIOS_AREA_END,
  BIOS_AREA_START,
  type BiosAreaAccess,
  type BiosAreaControl,
} from "./bios_area.ts";
import type { BusDevice } from "./bus_device.ts";
import type { GuestMemory } from "./guest_memory.ts";
import type { MappedRange } from "./memory.ts";
import type { Vm } from "./vm.ts";

/** First KVM slot of the split RAM (after FIRMWARE_SLOT, 32): RAM above 1 MiB, then the ranges. */
export const BIOS_SHADOW_FIRST_SLOT = 40;
/** Bytes of the area, for the MMIO bus. */
export const BIOS_SHADOW_SIZE = BIOS_AREA_END - BIOS_AREA_START;

const F_SEGMENT = 0xf_0000;
const SMALL_RANGE = 0x4000;

/** The machine's shadow RAM could not be set up (a bug in the caller, not user input). */
export class BiosShadowError extends DenovisorError {
  constructor(message: string) {
    super("internal", message);
  }
}

/** What the shadow needs: the VM, the low RAM slot and the firmware image's mapping. */
export interface BiosShadowOptions {
  /** The KVM slot of `ram`, which this splits. */
  readonly slot: number;
  /** The RAM range from 0 (at least 1 MiB) with its host address. */
  readonly ram: MappedRange;
  /** Guest RAM, for the writes a write-only range takes. */
  readonly memory: GuestMemory;
  /** The firmware image as mapped for KVM: its tail is the ROM behind 0xE0000-0xFFFFF. */
  readonly rom: { readonly address: bigint; readonly size: number };
}

interface ShadowRange {
  readonly start: number;
  readonly size: number;
  readonly slot: number;
  access: BiosAreaAccess;
  /** Whether a KVM slot backs it now (not in the C/D segments reading the ROM). */
  mapped: boolean;
}

/** The PAM-controlled area: a `BiosAreaControl` for the host bridge, a `BusDevice` for writes. */
export class BiosShadow implements BiosAreaControl, BusDevice {
  readonly #vm: Vm;
  readonly #options: BiosShadowOptions;
  readonly #ranges: ShadowRange[] = [];
  readonly #romStart: number;

  /** Re-registers the low RAM as [0, 0xC0000), the PAM ranges (read-write) and the rest. */
  constructor(vm: Vm, options: BiosShadowOptions) {
    const { ram, slot, rom } = options;
    if (ram.start !== 0 || ram.size < BIOS_AREA_END) {
      throw new BiosShadowError("The shadow RAM needs one RAM range from 0 past 1 MiB");
    }
    this.#vm = vm;
    this.#options = options;
    this.#romStart = BIOS_AREA_END - Math.min(rom.size, BIOS_AREA_END - 0xe_0000);
    let next = BIOS_SHADOW_FIRST_SLOT;
    for (let start = BIOS_AREA_START; start < BIOS_AREA_END;) {
      const size = start < F_SEGMENT ? SMALL_RANGE : BIOS_AREA_END - F_SEGMENT;
      this.#ranges.push({ start, size, slot: ++next, access: "read-write", mapped: false });
      start += size;
    }
    // KVM cannot resize a slot: delete the whole one, then register the pieces.
    this.#register(slot, 0, 0, 0n, 0);
    this.#register(slot, 0, BIOS_AREA_START, ram.hostAddress, 0);
    if (ram.size > BIOS_AREA_END) {
      this.#register(
        BIOS_SHADOW_FIRST_SLOT,
        BIOS_AREA_END,
        ram.size - BIOS_AREA_END,
        ram.hostAddress + BigInt(BIOS_AREA_END),
        0,
      );
    }
    for (const range of this.#ranges) this.#apply(range);
  }

  /** What each range is now, lowest first (for tests and diagnostics). */
  get ranges(): readonly { start: number; size: number; access: BiosAreaAccess }[] {
    return this.#ranges.map(({ start, size, access }) => ({ start, size, access }));
  }

  setAccess(start: number, size: number, access: BiosAreaAccess): void {
    for (const range of this.#ranges) {
      if (range.start >= start + size || start >= range.start + range.size) continue;
      if (range.access === access) continue;
      // KVM cannot change a slot's READONLY flag: delete it, then register anew.
      if (range.mapped) this.#register(range.slot, range.start, 0, 0n, 0);
      range.mapped = false;
      range.access = access;
      this.#apply(range);
    }
  }

  /** Reached only where no slot backs the range (C/D segments reading the empty PCI bus). */
  read(_offset: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  /** Writes KVM passed out: kept in RAM for a write-only range, dropped otherwise. */
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const address = BIOS_AREA_START + offset + i;
      const range = this.#rangeAt(address);
      if (range?.access === "write-only") {
        this.#options.memory.write(address, data.subarray(i, i + 1));
      }
    }
  }

  #rangeAt(address: number): ShadowRange | undefined {
    return this.#ranges.find((r) => address >= r.start && address < r.start + r.size);
  }

  #apply(range: ShadowRange): void {
    const { ram, rom } = this.#options;
    range.mapped = range.access !== "rom" && range.access !== "write-only" ||
      range.start >= this.#romStart;
    switch (range.access) {
      case "read-write":
        return this.#register(
          range.slot,
          range.start,
          range.size,
          ram.hostAddress + BigInt(range.start),
          0,
        );
      case "read-only":
        return this.#register(
          range.slot,
          range.start,
          range.size,
          ram.hostAddress + BigInt(range.start),
          KVM_MEM_READONLY,
        );
      default: {
        // ROM reads: the image's tail where there is one; elsewhere no slot (open bus).
        if (range.start < this.#romStart) return;
        const offset = rom.size - (BIOS_AREA_END - range.start);
        this.#register(
          range.slot,
          range.start,
          range.size,
          rom.address + BigInt(offset),
          KVM_MEM_READONLY,
        );
      }
    }
  }

  #register(
    slot: number,
    guestPhysAddr: number,
    memorySize: number,
    userspaceAddr: bigint,
    flags: number,
  ): void {
    this.#vm.setUserMemoryRegion({ slot, flags, guestPhysAddr, memorySize, userspaceAddr });
  }
}
