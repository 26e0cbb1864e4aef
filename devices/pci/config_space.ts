/**
 * The 256-byte configuration space of one type-0 function, built from its `PciFunction`
 * description: identity, command and status, BARs (delegated to `PciBars`), the
 * capability list from 0x40 with the MSI-X capability appended when the function asks
 * for it, and the interrupt line and pin. Guest writes outside the writable fields are
 * dropped, as read-only hardware registers would.
 *
 * @module
 */

import type { Bus } from "../../core/bus.ts";
import type { MsiController, PciCapability, PciFunction, PciInterrupts } from "./pci_device.ts";
import { Msix } from "./msix.ts";
import { encodeBase64, type Persistable } from "../../common/persist.ts";
import {
  parseConfigSpaceState,
  type PciConfigPersist,
  type PciConfigSpaceState,
} from "./config_space_state.ts";
import { PciBars } from "./pci_bars.ts";
import {
  PCI_BASE_ADDRESS_0,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_MSIX,
  PCI_CAPABILITIES_START,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_WRITABLE,
  PCI_CONFIG_SPACE_SIZE,
  PCI_INTERRUPT_LINE,
  PCI_MSIX_CAP_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_REVISION_ID,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  PciConfigError,
} from "./pci_registers.ts";

/** What a function's config space needs from the bus. */
export interface ConfigSpaceOptions {
  /** "00:SS.0", for bus range names and log messages. */
  readonly name: string;
  readonly mmio: Bus;
  readonly pio?: Bus;
  readonly msi: MsiController;
  /** The GSI the function's INTx pin reaches (ignored when its pin is 0). */
  readonly intxGsi: number;
  readonly log: (message: string) => void;
  /** The function's effective INTx level may have changed. */
  readonly onIntxChange: () => void;
}

/** A capability placed in config space. */
interface PlacedCapability {
  readonly start: number;
  readonly id: number;
  readonly next: number;
  /** The function's capability, or undefined for the MSI-X one the PCI layer owns. */
  readonly capability?: PciCapability;
}

/** Interrupt line value meaning "not connected" (PCI 3.0, 6.2.4). */
const INTERRUPT_LINE_NONE = 0xff;

/** Configuration space and interrupt state of one function on the bus. */
export class ConfigSpace implements Persistable<PciConfigSpaceState>, PciConfigPersist {
  readonly fn: PciFunction;
  readonly bars: PciBars;
  readonly msix?: Msix;
  readonly interrupts: PciInterrupts;
  readonly intxGsi: number;
  readonly #options: ConfigSpaceOptions;
  readonly #capabilities: PlacedCapability[] = [];
  #command = 0;
  #cacheLineSize = 0;
  #latencyTimer = 0;
  #interruptLine: number;
  #intxLevel = false;

  /** Checks `fn`'s description and lays out its capabilities; throws PciConfigError. */
  constructor(fn: PciFunction, options: ConfigSpaceOptions) {
    if (!Number.isInteger(fn.interruptPin) || fn.interruptPin < 0 || fn.interruptPin > 4) {
      throw new PciConfigError(
        `${options.name}: interrupt pin ${fn.interruptPin} does not exist; use 0 (none) or 1-4`,
      );
    }
    this.fn = fn;
    this.#options = options;
    this.intxGsi = options.intxGsi;
    this.#interruptLine = fn.interruptPin === 0 ? INTERRUPT_LINE_NONE : options.intxGsi;
    const layout = fn.msix;
    if (layout !== undefined) {
      const bar = fn.bars.find((b) => b.index === layout.bar);
      if (bar === undefined || bar.kind === "io") {
        throw new PciConfigError(
          `${options.name}: the MSI-X table is in BAR ${layout.bar}, which is not a memory BAR ` +
            `of the function; point it at one`,
        );
      }
      this.msix = new Msix(layout, bar.size, options.msi, options.log);
    }
    const msix = this.msix;
    try {
      this.bars = new PciBars(
        fn.bars,
        (bar) => bar.index === msix?.layout.bar ? msix.wrapBar(bar.device) : bar.device,
        {
          name: options.name,
          mmio: options.mmio,
          pio: options.pio,
          log: options.log,
          onMoved: (index, address) => fn.barMoved?.(index, address),
        },
      );
      this.#layOutCapabilities();
    } catch (error) {
      msix?.release(); // the routes are the controller's: give them back
      throw error;
    }
    const setIntx = (high: boolean) => {
      if (this.#intxLevel === high) return;
      this.#intxLevel = high;
      this.#options.onIntxChange();
    };
    this.interrupts = {
      msix: (vector) => msix?.fire(vector) ?? false,
      get msixEnabled() {
        return msix?.enabled ?? false;
      },
      setIntx,
    };
  }

  /** The command register. */
  get command(): number {
    return this.#command;
  }

  /** Whether the function drives its INTx line now (raised, not disabled, MSI-X off). */
  get intxAsserted(): boolean {
    return this.#intxLevel && this.fn.interruptPin !== 0 &&
      (this.#command & PCI_COMMAND_INTX_DISABLE) === 0 && !(this.msix?.enabled ?? false);
  }

  /** What the guest can change in this config space, as plain JSON. */
  save(): PciConfigSpaceState {
    return {
      version: 1,
      command: this.#command,
      cacheLineSize: this.#cacheLineSize,
      latencyTimer: this.#latencyTimer,
      interruptLine: this.#interruptLine,
      intxLevel: this.#intxLevel,
      bars: this.bars.save(),
      capabilities: this.fn.capabilities.map((cap) =>
        cap.onWrite === undefined ? null : encodeBase64(cap.body)
      ),
      msix: this.msix?.save() ?? null,
    };
  }

  /** Restores a saved state; a bad one throws `StateError` and changes nothing. */
  restore(state: unknown, path = "state"): void {
    this.prepareRestore(state, path)();
  }

  /**
   * Checks a saved state (untrusted) and returns the function that applies it: BARs are
   * reprogrammed and remapped, MSI-X routes follow the table, and the INTx line is driven
   * to the saved level (restore the interrupt controller first).
   */
  prepareRestore(state: unknown, path: string): () => void {
    const parsed = parseConfigSpaceState(state, path, this);
    return () => {
      parsed.commitBars();
      this.#setCommand(parsed.command);
      this.#cacheLineSize = parsed.cacheLineSize;
      this.#latencyTimer = parsed.latencyTimer;
      this.#interruptLine = parsed.interruptLine;
      parsed.commitCapabilities();
      parsed.commitMsix?.();
      this.#intxLevel = parsed.intxLevel;
      this.#options.onIntxChange();
    };
  }

  /** Bytes at `offset` of config space into `data`; bytes past 0xff read as all ones. */
  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      data[i] = at < PCI_CONFIG_SPACE_SIZE ? this.#readDword(at & ~3) >>> (8 * (at & 3)) : 0xff;
    }
  }

  /** A guest write of `data` at `offset`, split into the dwords it touches. */
  write(offset: number, data: Uint8Array): void {
    let i = 0;
    while (i < data.length && offset + i < PCI_CONFIG_SPACE_SIZE) {
      const aligned = (offset + i) & ~3;
      let value = 0;
      let mask = 0;
      for (; i < data.length && ((offset + i) & ~3) === aligned; i++) {
        const shift = 8 * ((offset + i) & 3);
        value |= data[i] << shift;
        mask |= 0xff << shift;
      }
      this.#writeDword(aligned, value >>> 0, mask >>> 0);
    }
  }

  /** What firmware does before the OS starts: turn on decoding of the assigned BARs. */
  enableDecoding(): void {
    this.#setCommand(this.#command | PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
  }

  #readDword(aligned: number): number {
    const fn = this.fn;
    switch (aligned) {
      case PCI_VENDOR_ID:
        return (fn.vendorId | (fn.deviceId << 16)) >>> 0;
      case PCI_COMMAND:
        return (this.#command | (this.#status() << 16)) >>> 0;
      case PCI_REVISION_ID:
        return ((fn.revisionId & 0xff) | ((fn.classCode & 0xffffff) << 8)) >>> 0;
      case PCI_CACHE_LINE_SIZE:
        return this.#cacheLineSize | (this.#latencyTimer << 8); // header type 0, no BIST
      case PCI_SUBSYSTEM_VENDOR_ID:
        return (fn.subsystemVendorId | (fn.subsystemId << 16)) >>> 0;
      case PCI_CAPABILITY_LIST:
        return this.#capabilities[0]?.start ?? 0;
      case PCI_INTERRUPT_LINE:
        return this.#interruptLine | (fn.interruptPin << 8);
    }
    if (aligned >= PCI_BASE_ADDRESS_0 && aligned < PCI_BASE_ADDRESS_0 + 24) {
      return this.bars.read((aligned - PCI_BASE_ADDRESS_0) / 4);
    }
    const cap = this.#capabilityAt(aligned);
    if (cap === undefined) {
      return aligned >= PCI_CAPABILITIES_START ? (fn.readConfig?.(aligned) ?? 0) >>> 0 : 0;
    }
    if (cap.capability === undefined) return this.#readMsixDword(cap, aligned - cap.start);
    let value = 0;
    for (let b = 3; b >= 0; b--) value = (value << 8) | this.#capabilityByte(cap, aligned + b);
    return value >>> 0;
  }

  #writeDword(aligned: number, value: number, mask: number): void {
    if (aligned === PCI_COMMAND) {
      // Only the command half is writable; status error bits are never set here.
      const command = merge(this.#command, value, mask) & 0xffff;
      this.#setCommand(command & PCI_COMMAND_WRITABLE);
    } else if (aligned === PCI_CACHE_LINE_SIZE) {
      const merged = merge(this.#cacheLineSize | (this.#latencyTimer << 8), value, mask);
      this.#cacheLineSize = merged & 0xff;
      this.#latencyTimer = (merged >>> 8) & 0xff;
    } else if (aligned >= PCI_BASE_ADDRESS_0 && aligned < PCI_BASE_ADDRESS_0 + 24) {
      const register = (aligned - PCI_BASE_ADDRESS_0) / 4;
      this.bars.write(register, merge(this.bars.read(register), value, mask));
    } else if (aligned === PCI_INTERRUPT_LINE) {
      // A scratch register for the OS (PCI 3.0, 6.2.4): keep what it writes.
      if (mask & 0xff) this.#interruptLine = value & 0xff;
    } else {
      const cap = this.#capabilityAt(aligned);
      if (cap !== undefined) this.#writeCapability(cap, aligned, value, mask);
      else if (aligned >= PCI_CAPABILITIES_START) this.fn.writeConfig?.(aligned, value, mask);
    }
  }

  #setCommand(command: number): void {
    const changed = this.#command ^ command;
    this.#command = command;
    if (changed & (PCI_COMMAND_MEMORY | PCI_COMMAND_IO)) {
      this.bars.setDecoding(
        (command & PCI_COMMAND_MEMORY) !== 0,
        (command & PCI_COMMAND_IO) !== 0,
      );
    }
    if (changed & PCI_COMMAND_INTX_DISABLE) this.#options.onIntxChange();
  }

  #status(): number {
    const caps = this.#capabilities.length > 0 ? PCI_STATUS_CAP_LIST : 0;
    // Interrupt Status shows the function's own level, whatever INTx Disable says.
    return caps | (this.#intxLevel && this.fn.interruptPin !== 0 ? PCI_STATUS_INTERRUPT : 0);
  }

  #layOutCapabilities(): void {
    const entries: { id: number; size: number; capability?: PciCapability }[] = this.fn
      .capabilities.map((capability) => {
        if (!Number.isInteger(capability.id) || capability.id < 0 || capability.id > 0xff) {
          throw new PciConfigError(
            `${this.#options.name}: capability ID ${capability.id} does not fit a byte`,
          );
        }
        return { id: capability.id, size: 2 + capability.body.length, capability };
      });
    if (this.msix !== undefined) entries.push({ id: PCI_CAP_ID_MSIX, size: PCI_MSIX_CAP_SIZE });
    // Linux masks the low two bits of every pointer, so each capability starts on a dword.
    const starts: number[] = [];
    let at = PCI_CAPABILITIES_START;
    for (const entry of entries) {
      starts.push(at);
      at = (at + entry.size + 3) & ~3;
    }
    if (at > PCI_CONFIG_SPACE_SIZE) {
      throw new PciConfigError(
        `${this.#options.name}: the capabilities need ${at - PCI_CAPABILITIES_START} bytes but ` +
          `config space has ${PCI_CONFIG_SPACE_SIZE - PCI_CAPABILITIES_START} after the header; ` +
          `use fewer or smaller capabilities`,
      );
    }
    entries.forEach((entry, i) => {
      this.#capabilities.push({
        start: starts[i],
        id: entry.id,
        next: starts[i + 1] ?? 0,
        capability: entry.capability,
      });
    });
  }

  #capabilityAt(offset: number): PlacedCapability | undefined {
    // Capabilities start on dwords, so an aligned offset inside one finds it.
    return this.#capabilities.find((cap) =>
      offset >= cap.start && offset < cap.start + capabilitySize(cap)
    );
  }

  #capabilityByte(cap: PlacedCapability, offset: number): number {
    const rel = offset - cap.start;
    if (rel === 0) return cap.id;
    if (rel === 1) return cap.next;
    const body = cap.capability?.body;
    return body !== undefined && rel - 2 < body.length ? body[rel - 2] : 0;
  }

  #readMsixDword(cap: PlacedCapability, rel: number): number {
    const msix = this.msix!;
    if (rel === 0) return (cap.id | (cap.next << 8) | (msix.control << PCI_MSIX_FLAGS * 8)) >>> 0;
    if (rel === PCI_MSIX_TABLE) return msix.tableRegister;
    if (rel === PCI_MSIX_PBA) return msix.pbaRegister;
    return 0;
  }

  #writeCapability(cap: PlacedCapability, aligned: number, value: number, mask: number): void {
    if (cap.capability === undefined) {
      // MSI-X: only Message Control (the upper half of the first dword) is writable.
      if (aligned === cap.start && (mask >>> 16) !== 0) {
        const wasEnabled = this.msix!.enabled;
        this.msix!.control = merge(this.msix!.control << 16, value, mask) >>> 16;
        if (this.msix!.enabled !== wasEnabled) this.#options.onIntxChange();
      }
      return;
    }
    const { body, onWrite } = cap.capability;
    if (onWrite === undefined) return; // a read-only capability
    // The bytes written that land in the body, as one run (a dword holds at most one run).
    let first = -1;
    const bytes: number[] = [];
    for (let b = 0; b < 4; b++) {
      const bodyOffset = aligned + b - cap.start - 2;
      if (((mask >>> (8 * b)) & 0xff) === 0 || bodyOffset < 0 || bodyOffset >= body.length) {
        continue;
      }
      if (first < 0) first = bodyOffset;
      bytes.push((value >>> (8 * b)) & 0xff);
    }
    if (first < 0) return;
    const data = Uint8Array.from(bytes);
    body.set(data, first);
    onWrite.call(cap.capability, first, data);
  }
}

function capabilitySize(cap: PlacedCapability): number {
  return cap.capability === undefined ? PCI_MSIX_CAP_SIZE : 2 + cap.capability.body.length;
}

/** `old` with the bytes selected by `mask` replaced from `value`. */
function merge(old: number, value: number, mask: number): number {
  return ((old & ~mask) | (value & mask)) >>> 0;
}
