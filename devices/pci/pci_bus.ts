/**
 * PCI bus 0: up to 32 single-function devices, the host bridge in slot 0. The bus places
 * every memory BAR in the PCI MMIO window at boot (as firmware would), answers
 * configuration accesses for the config mechanism, and ORs the INTx levels of the
 * functions that share an IOAPIC pin into one level-triggered line.
 *
 * INTx swizzle: pin P (1 = INTA#) of slot S reaches GSI PCI_INTX_FIRST_GSI +
 * (S + P - 1) % 4, the standard rotation the MP table describes to the guest.
 *
 * @module
 */

import type { Bus } from "../../core/bus.ts";
import {
  PCI_INTX_FIRST_GSI,
  PCI_MMIO_WINDOW_SIZE,
  PCI_MMIO_WINDOW_START,
} from "../../core/layout.ts";
import { ConfigSpace } from "./config_space.ts";
import type { PciConfigAccess } from "./config_mechanism.ts";
import { hostBridge } from "./host_bridge.ts";
import type { Persistable, VersionedState } from "../../common/persist.ts";
import { StateReader } from "../../common/persist.ts";
import type { PciConfigSpaceState } from "./config_space_state.ts";
import type { MsiController, PciFunction } from "./pci_device.ts";
import { hex, PCI_SLOT_COUNT, PciConfigError } from "./pci_registers.ts";

/** What the VMM hands the PCI bus. */
export interface PciBusOptions {
  /** The machine's MMIO bus, where memory BARs are mapped. */
  readonly mmio: Bus;
  /** The port-I/O bus, for I/O BARs (left unmapped without it). */
  readonly pio?: Bus;
  /** One route per MSI-X vector comes from here. */
  readonly msi: MsiController;
  /** Drives an IOAPIC pin (KVM_IRQ_LINE): `high` means asserted. */
  readonly setIrqLevel: (gsi: number, high: boolean) => void;
  /** Where boot-time BAR placement happens; defaults to PCI_MMIO_WINDOW_*. */
  readonly mmioWindow?: { readonly start: number; readonly size: number };
  /** Guest mistakes go here, each distinct message once; defaults to console.warn. */
  readonly log?: (message: string) => void;
  /** The function in slot 0; defaults to `hostBridge()` (firmware boot uses an i440FX). */
  readonly hostBridge?: PciFunction;
}

/** A slot's interrupt pin as the MP table lists it. */
export interface PciIntxSource {
  readonly slot: number;
  /** 1 (INTA#) .. 4 (INTD#). */
  readonly pin: number;
}

/** The GSI that pin `pin` (1-4) of slot `slot` reaches. */
export function pciIntxGsi(slot: number, pin: number): number {
  return PCI_INTX_FIRST_GSI + ((slot + pin - 1) % 4);
}

/**
 * The bus's own state: the host bridge's configuration space. Each function's space is
 * saved with the function (e.g. `PciTransport.save`), keyed by that device's id.
 */
export interface PciBusState extends VersionedState {
  readonly version: 1;
  readonly hostBridge: PciConfigSpaceState;
}

/** PCI bus 0 with its host bridge. */
export class PciBus implements PciConfigAccess, Persistable<PciBusState> {
  readonly #options: PciBusOptions;
  readonly #slots: (ConfigSpace | undefined)[] = new Array(PCI_SLOT_COUNT).fill(undefined);
  readonly #lineLevels = new Map<number, boolean>();
  readonly #logged = new Set<string>();
  readonly #windowEnd: number;
  #nextMmio: number;

  constructor(options: PciBusOptions) {
    this.#options = options;
    const window = options.mmioWindow ??
      { start: PCI_MMIO_WINDOW_START, size: PCI_MMIO_WINDOW_SIZE };
    this.#nextMmio = window.start;
    this.#windowEnd = window.start + window.size;
    this.#place(0, options.hostBridge ?? hostBridge());
  }

  /**
   * Puts `fn` in the lowest free slot (1-31), assigns its memory BARs in the MMIO window,
   * turns on decoding and hands it its interrupts. Returns the slot. Throws
   * PciConfigError when the bus or the window is full or `fn` is malformed.
   */
  add(fn: PciFunction): number {
    const slot = this.#slots.findIndex((s, i) => i > 0 && s === undefined);
    if (slot < 0) {
      throw new PciConfigError(
        `PCI bus 0 has no free slot for ${hex(fn.vendorId)}:${hex(fn.deviceId)}; ` +
          `use at most ${PCI_SLOT_COUNT - 1} PCI devices`,
      );
    }
    this.#place(slot, fn);
    return slot;
  }

  /** The function in `slot`, for inspection (tests, the monitor). */
  slot(slot: number): ConfigSpace | undefined {
    return this.#slots[slot];
  }

  /** The host bridge's configuration space (what the guest may have written there). */
  save(): PciBusState {
    return { version: 1, hostBridge: this.#slots[0]!.save() };
  }

  /** Restores the host bridge's space; a bad state throws `StateError`, changing nothing. */
  restore(state: unknown, path = "state"): void {
    const r = new StateReader(state, path);
    r.version([1]);
    this.#slots[0]!.prepareRestore(r.raw("hostBridge"), r.fieldPath("hostBridge"))();
  }

  /** Every slot's used interrupt pin, for the MP table. */
  intxSources(): PciIntxSource[] {
    const sources: PciIntxSource[] = [];
    this.#slots.forEach((space, slot) => {
      if (space !== undefined && space.fn.interruptPin !== 0) {
        sources.push({ slot, pin: space.fn.interruptPin });
      }
    });
    return sources;
  }

  readConfig(bus: number, device: number, fn: number, register: number, data: Uint8Array): void {
    const space = bus === 0 && fn === 0 ? this.#slots[device] : undefined;
    if (space === undefined) data.fill(0xff); // no device: the master aborts, reads all ones
    else space.read(register, data);
  }

  writeConfig(bus: number, device: number, fn: number, register: number, data: Uint8Array): void {
    const space = bus === 0 && fn === 0 ? this.#slots[device] : undefined;
    space?.write(register, data);
  }

  #place(slot: number, fn: PciFunction): void {
    const name = `00:${slot.toString(16).padStart(2, "0")}.0`;
    const gsi = fn.interruptPin === 0 ? 0 : pciIntxGsi(slot, fn.interruptPin);
    const space = new ConfigSpace(fn, {
      name,
      mmio: this.#options.mmio,
      pio: this.#options.pio,
      msi: this.#options.msi,
      intxGsi: gsi,
      log: (message) => this.#logOnce(message),
      onIntxChange: () => this.#updateLine(gsi),
    });
    // Each BAR aligned to its size, as the spec requires; nothing changes if one fails.
    let next = this.#nextMmio;
    const addresses = space.bars.memoryBars.map((bar) => {
      const address = Math.ceil(next / bar.size) * bar.size;
      if (address + bar.size > this.#windowEnd) {
        space.msix?.release();
        throw new PciConfigError(
          `${name}: BAR ${bar.index} (${hex(bar.size)} bytes) does not fit in the PCI MMIO ` +
            `window below ${hex(this.#windowEnd)}; use fewer or smaller PCI devices`,
        );
      }
      next = address + bar.size;
      return { index: bar.index, address };
    });
    this.#nextMmio = next;
    this.#slots[slot] = space;
    fn.attach(space.interrupts, space);
    for (const { index, address } of addresses) space.bars.assign(index, address);
    space.enableDecoding();
  }

  /** Recomputes the OR of every function on `gsi` and tells the VMM when it changed. */
  #updateLine(gsi: number): void {
    if (gsi === 0) return;
    const high = this.#slots.some((s) => s !== undefined && s.intxGsi === gsi && s.intxAsserted);
    if ((this.#lineLevels.get(gsi) ?? false) === high) return;
    this.#lineLevels.set(gsi, high);
    this.#options.setIrqLevel(gsi, high);
  }

  #logOnce(message: string): void {
    if (this.#logged.has(message)) return;
    this.#logged.add(message);
    (this.#options.log ?? ((m: string) => console.warn(m)))(`PCI ${message}`);
  }
}
