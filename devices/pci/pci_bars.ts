/**
 * The six base address registers of a type-0 header and the ranges they claim on the
 * machine's buses. The registers keep only the address bits a BAR of its size can hold,
 * so the guest's all-ones sizing write reads back as the size mask (PCI 3.0, 6.2.5.1).
 * Whenever the address or the decode enable changes, the old range leaves the bus and the
 * new one goes in; a placement that would overlap another range is refused and logged,
 * and the BAR stays unmapped until the guest moves it somewhere free.
 *
 * @module
 */

import { type Bus, BusOverlapError } from "../../core/bus.ts";
import type { BusDevice } from "../bus_device.ts";
import type { PciBar } from "./pci_device.ts";
import { formatU64, StateError, StateReader } from "../../common/persist.ts";
import {
  hex,
  PCI_BAR_COUNT,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PciConfigError,
} from "./pci_registers.ts";

/** One BAR as plain JSON: its number and the address bits its registers hold. */
export interface PciBarState {
  readonly index: number;
  /** The register contents without flag bits (high dword << 32 | low), a u64 string. */
  readonly address: string;
}

/** Where a function's BARs are mapped and who hears about moves. */
export interface PciBarsOptions {
  /** Used in bus range names and log messages, e.g. "00:03.0". */
  readonly name: string;
  readonly mmio: Bus;
  /** The port-I/O bus; without it I/O BARs are programmable but never mapped. */
  readonly pio?: Bus;
  readonly log: (message: string) => void;
  /** A memory BAR's effective address changed (0: no longer mapped). */
  readonly onMoved: (index: number, address: number) => void;
}

interface BarState {
  readonly bar: PciBar;
  /** What answers accesses on the bus (the function's device, maybe wrapped for MSI-X). */
  readonly device: BusDevice;
  /** Register contents: low dword without the flag bits, and the high dword of a mem64. */
  low: number;
  high: number;
  /** Base at which the BAR sits on its bus, if it does. */
  mapped?: number;
}

const MIN_MEMORY_BAR = 16;
const MIN_IO_BAR = 4;
const MAX_IO_BAR = 256;
const MAX_MEMORY_BAR = 0x8000_0000;
const IO_SPACE_END = 0x1_0000;
const TWO_32 = 0x1_0000_0000;

/** The BAR registers of one function. */
export class PciBars {
  readonly #options: PciBarsOptions;
  /** Register number -> the BAR it belongs to, and whether it is a mem64's high half. */
  readonly #registers: ({ state: BarState; high: boolean } | undefined)[];
  readonly #states: BarState[] = [];
  #memoryEnabled = false;
  #ioEnabled = false;

  /** Checks the BAR descriptions; `deviceFor` may wrap a BAR's device (MSI-X). */
  constructor(
    bars: readonly PciBar[],
    deviceFor: (bar: PciBar) => BusDevice,
    options: PciBarsOptions,
  ) {
    this.#options = options;
    this.#registers = new Array(PCI_BAR_COUNT).fill(undefined);
    for (const bar of bars) {
      validateBar(bar, options.name);
      const used = bar.kind === "mem64" ? [bar.index, bar.index + 1] : [bar.index];
      if (used.some((r) => this.#registers[r] !== undefined)) {
        throw new PciConfigError(
          `${options.name}: BAR ${bar.index} overlaps another BAR's registers; give each BAR ` +
            `its own index (a 64-bit BAR takes two)`,
        );
      }
      const state: BarState = { bar, device: deviceFor(bar), low: 0, high: 0 };
      this.#states.push(state);
      this.#registers[bar.index] = { state, high: false };
      if (bar.kind === "mem64") this.#registers[bar.index + 1] = { state, high: true };
    }
  }

  /** The memory BARs, for initial placement. */
  get memoryBars(): readonly PciBar[] {
    return this.#states.filter((s) => s.bar.kind !== "io").map((s) => s.bar);
  }

  /** The address BAR `index` is programmed with (decoding or not); undefined if no such BAR. */
  address(index: number): number | undefined {
    const state = this.#states.find((s) => s.bar.index === index);
    return state === undefined ? undefined : barAddress(state);
  }

  /** Where BAR `index` currently sits on its bus, if it is mapped. */
  mappedAt(index: number): number | undefined {
    return this.#states.find((s) => s.bar.index === index)?.mapped;
  }

  /** The value of BAR register `register` (0-5) as the guest reads it. */
  read(register: number): number {
    const slot = this.#registers[register];
    if (slot === undefined) return 0; // unimplemented BARs are hardwired to 0
    const { state } = slot;
    if (slot.high) return state.high;
    if (state.bar.kind === "io") return (state.low | PCI_BASE_ADDRESS_SPACE_IO) >>> 0;
    const type = state.bar.kind === "mem64" ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
    const prefetch = state.bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0;
    return (state.low | type | prefetch) >>> 0;
  }

  /** A guest write of `value` to BAR register `register`; remaps when decoding is on. */
  write(register: number, value: number): void {
    const slot = this.#registers[register];
    if (slot === undefined) return;
    const { state } = slot;
    if (slot.high) {
      state.high = value >>> 0; // sizes stay below 4 GiB: every high bit is an address bit
    } else {
      const flagBits = state.bar.kind === "io" ? 0x3 : 0xf;
      state.low = (value & ~(state.bar.size - 1) & ~flagBits) >>> 0;
    }
    this.#remap(state);
  }

  /** Programs BAR `index` with `address` as firmware would at boot (then remaps). */
  assign(index: number, address: number): void {
    const state = this.#states.find((s) => s.bar.index === index);
    if (state === undefined) return;
    state.low = (address % TWO_32) >>> 0;
    state.high = Math.floor(address / TWO_32) >>> 0;
    this.#remap(state);
  }

  /** Every BAR's register contents, in the order the function lists them. */
  save(): PciBarState[] {
    return this.#states.map((state) => ({
      index: state.bar.index,
      address: formatU64((BigInt(state.high) << 32n) | BigInt(state.low)),
    }));
  }

  /**
   * Checks saved BARs (untrusted: the same BARs, each value one the register can hold)
   * and returns the function that programs them and remaps what decodes.
   */
  prepareRestore(value: unknown, path: string): () => void {
    if (!Array.isArray(value)) throw new StateError(path, "expected an array of BARs");
    if (value.length !== this.#states.length) {
      throw new StateError(path, `expected ${this.#states.length} BARs, got ${value.length}`);
    }
    const saved = value.map((entry, i) => {
      const state = this.#states[i];
      const r = new StateReader(entry, `${path}[${i}]`);
      const index = r.integer("index", 0, PCI_BAR_COUNT - 1);
      if (index !== state.bar.index) {
        throw new StateError(r.fieldPath("index"), `expected BAR ${state.bar.index}, got ${index}`);
      }
      const max = state.bar.kind === "mem64" ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
      const address = r.u64("address", max);
      const low = Number(address & 0xffff_ffffn);
      const flagBits = state.bar.kind === "io" ? 0x3 : 0xf;
      if ((low & ((state.bar.size - 1) | flagBits)) !== 0) {
        throw new StateError(
          r.fieldPath("address"),
          `${formatU64(address)} is not aligned to the BAR's ${hex(state.bar.size)} bytes`,
        );
      }
      return { state, low, high: Number(address >> 32n) };
    });
    return () => {
      for (const { state, low, high } of saved) {
        state.low = low;
        state.high = high;
        this.#remap(state);
      }
    };
  }

  /** Follows the command register's Memory Space and I/O Space enables. */
  setDecoding(memory: boolean, io: boolean): void {
    this.#memoryEnabled = memory;
    this.#ioEnabled = io;
    for (const state of this.#states) this.#remap(state);
  }

  #remap(state: BarState): void {
    const isIo = state.bar.kind === "io";
    const bus = isIo ? this.#options.pio : this.#options.mmio;
    const enabled = isIo ? this.#ioEnabled : this.#memoryEnabled;
    const address = barAddress(state);
    const wanted = enabled && bus !== undefined && placeable(state.bar, address)
      ? address
      : undefined;
    if (wanted === state.mapped) return;
    const before = state.mapped;
    if (before !== undefined) bus?.remove(before);
    state.mapped = undefined;
    if (wanted !== undefined && bus !== undefined) {
      const rangeName = `${this.#options.name} BAR ${state.bar.index}`;
      try {
        bus.insert(wanted, state.bar.size, rangeName, state.device);
        state.mapped = wanted;
      } catch (error) {
        if (!(error instanceof BusOverlapError)) throw error;
        const end = wanted + state.bar.size;
        const other = bus.ranges.find((r) => r.base < end && wanted < r.base + r.length);
        this.#options.log(
          `${this.#options.name}: the guest placed BAR ${state.bar.index} at ${hex(wanted)} ` +
            `(+${hex(state.bar.size)}) where it overlaps ${other?.name ?? "another range"}; ` +
            `the BAR stays unmapped until it is moved`,
        );
      }
    }
    if (!isIo && state.mapped !== before) {
      this.#options.onMoved(state.bar.index, state.mapped ?? 0);
    }
  }
}

function barAddress(state: BarState): number {
  return state.high * TWO_32 + state.low;
}

/**
 * Whether a BAR at `address` can go on a bus: 0 means unassigned, and the halfway values
 * of sizing (all ones) fall outside what a bus range can hold.
 */
function placeable(bar: PciBar, address: number): boolean {
  if (address === 0 || !Number.isSafeInteger(address + bar.size)) return false;
  return bar.kind !== "io" || address + bar.size <= IO_SPACE_END;
}

function validateBar(bar: PciBar, name: string): void {
  const isIo = bar.kind === "io";
  const lastIndex = bar.kind === "mem64" ? PCI_BAR_COUNT - 2 : PCI_BAR_COUNT - 1;
  if (!Number.isInteger(bar.index) || bar.index < 0 || bar.index > lastIndex) {
    throw new PciConfigError(
      `${name}: a ${bar.kind} BAR cannot have index ${bar.index}; use 0 to ${lastIndex}`,
    );
  }
  const min = isIo ? MIN_IO_BAR : MIN_MEMORY_BAR;
  const max = isIo ? MAX_IO_BAR : MAX_MEMORY_BAR;
  const powerOfTwo = Number.isInteger(bar.size) && bar.size > 0 &&
    (bar.size & (bar.size - 1)) === 0;
  if (!powerOfTwo || bar.size < min || bar.size > max) {
    throw new PciConfigError(
      `${name}: BAR ${bar.index} has size ${bar.size}; a ${bar.kind} BAR needs a power of two ` +
        `from ${min} to ${hex(max)} bytes`,
    );
  }
}
