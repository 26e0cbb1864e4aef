/**
 * MSI-X for one function (PCI Local Bus 3.0, section 6.8.2): the message control register
 * of the capability, and the vector table and pending-bit array that live inside one of
 * the function's memory BARs. Each vector owns an `MsiRoute`; the route carries the
 * guest's message only while the vector can fire (MSI-X enabled, function and vector
 * unmasked), so a masked vector is parked as a pending bit and sent on unmask.
 *
 * @module
 */

import type { BusDevice } from "../bus_device.ts";
import { encodeBase64, StateError, StateReader } from "../../common/persist.ts";
import type { MsiController, MsiRoute, PciMsixLayout } from "./pci_device.ts";
import {
  hex,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_MAX_VECTORS,
  PciConfigError,
} from "./pci_registers.ts";

/** MSI-X of one function as plain JSON: control bits, the vector table and the PBA. */
export interface MsixState {
  readonly enabled: boolean;
  readonly functionMasked: boolean;
  /** The vector table, 16 bytes per vector, base64. */
  readonly table: string;
  /** The pending-bit array, base64. */
  readonly pba: string;
}

/** The message a vector sends, as the guest wrote it into its table entry. */
export interface MsiMessage {
  readonly addressLo: number;
  readonly addressHi: number;
  readonly data: number;
}

/** The MSI-X state of one function: control bits, table, pending bits and routes. */
export class Msix {
  readonly layout: PciMsixLayout;
  readonly #table: Uint8Array;
  readonly #tableView: DataView;
  readonly #pending: Uint8Array;
  readonly #routes: MsiRoute[];
  /** What each route currently carries, to skip reprogramming when nothing changed. */
  readonly #programmed: (MsiMessage | undefined)[];
  readonly #log: (message: string) => void;
  #enabled = false;
  #functionMasked = false;

  /** Validates `layout` against the BAR that holds it and allocates one route per vector. */
  constructor(
    layout: PciMsixLayout,
    barSize: number,
    controller: MsiController,
    log: (message: string) => void,
  ) {
    const { vectors, tableOffset, pbaOffset } = layout;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > PCI_MSIX_MAX_VECTORS) {
      throw new PciConfigError(
        `MSI-X cannot have ${vectors} vectors; use 1 to ${PCI_MSIX_MAX_VECTORS}`,
      );
    }
    const tableSize = vectors * PCI_MSIX_ENTRY_SIZE;
    const pbaSize = pbaBytes(vectors);
    for (
      const [what, offset, size] of [["table", tableOffset, tableSize], [
        "PBA",
        pbaOffset,
        pbaSize,
      ]] as const
    ) {
      if (!Number.isInteger(offset) || offset < 0 || offset % 8 !== 0 || offset + size > barSize) {
        throw new PciConfigError(
          `The MSI-X ${what} at ${hex(offset)} (+${hex(size)}) does not fit 8-byte aligned in ` +
            `BAR ${layout.bar} of ${hex(barSize)} bytes; move it or grow the BAR`,
        );
      }
    }
    if (tableOffset < pbaOffset + pbaSize && pbaOffset < tableOffset + tableSize) {
      throw new PciConfigError(
        `The MSI-X table at ${hex(tableOffset)} overlaps the PBA at ${
          hex(pbaOffset)
        }; separate them`,
      );
    }
    this.layout = layout;
    this.#table = new Uint8Array(tableSize);
    this.#tableView = new DataView(this.#table.buffer);
    // Every vector starts masked (spec 6.8.2.9).
    for (let v = 0; v < vectors; v++) this.#setEntryMasked(v, true);
    this.#pending = new Uint8Array(pbaSize);
    this.#routes = Array.from({ length: vectors }, () => controller.allocate());
    this.#programmed = new Array(vectors).fill(undefined);
    this.#log = log;
  }

  /** Whether the driver set MSI-X Enable. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Whether the driver set Function Mask. */
  get functionMasked(): boolean {
    return this.#functionMasked;
  }

  /** Message Control: table size (N - 1), Function Mask and MSI-X Enable. */
  get control(): number {
    return (this.layout.vectors - 1) | (this.#functionMasked ? PCI_MSIX_FLAGS_MASKALL : 0) |
      (this.#enabled ? PCI_MSIX_FLAGS_ENABLE : 0);
  }

  /** A write to Message Control: only Enable and Function Mask are writable. */
  set control(value: number) {
    this.#enabled = (value & PCI_MSIX_FLAGS_ENABLE) !== 0;
    this.#functionMasked = (value & PCI_MSIX_FLAGS_MASKALL) !== 0;
    for (let v = 0; v < this.layout.vectors; v++) this.#sync(v);
  }

  /** The Table Offset/BIR register. */
  get tableRegister(): number {
    return (this.layout.tableOffset | this.layout.bar) >>> 0;
  }

  /** The PBA Offset/BIR register. */
  get pbaRegister(): number {
    return (this.layout.pbaOffset | this.layout.bar) >>> 0;
  }

  /** The message of `vector` as programmed in the table (whether or not it can fire). */
  message(vector: number): MsiMessage {
    const at = vector * PCI_MSIX_ENTRY_SIZE;
    return {
      addressLo: this.#tableView.getUint32(at + PCI_MSIX_ENTRY_LOWER_ADDR, true),
      addressHi: this.#tableView.getUint32(at + PCI_MSIX_ENTRY_UPPER_ADDR, true),
      data: this.#tableView.getUint32(at + PCI_MSIX_ENTRY_DATA, true),
    };
  }

  /** Whether `vector`'s pending bit is set. */
  isPending(vector: number): boolean {
    return (this.#pending[vector >> 3] & (1 << (vector & 7))) !== 0;
  }

  /**
   * Sends `vector` if it can fire now; if MSI-X is on but the vector or the function is
   * masked, sets its pending bit instead. False when nothing was sent.
   */
  fire(vector: number): boolean {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.layout.vectors) {
      this.#log(`MSI-X vector ${vector} does not exist (the function has ${this.layout.vectors})`);
      return false;
    }
    if (!this.#enabled) return false;
    if (this.#functionMasked || this.#entryMasked(vector)) {
      this.#setPending(vector, true);
      return false;
    }
    this.#routes[vector].trigger();
    return true;
  }

  /**
   * Wraps the device of the BAR that holds the table and PBA: accesses starting inside
   * them are served here, the rest go to `device`.
   */
  wrapBar(device: BusDevice): BusDevice {
    const { tableOffset, pbaOffset, vectors } = this.layout;
    const tableEnd = tableOffset + vectors * PCI_MSIX_ENTRY_SIZE;
    const pbaEnd = pbaOffset + this.#pending.length;
    return {
      read: (offset, data) => {
        if (offset >= tableOffset && offset < tableEnd) {
          copyOut(this.#table, offset - tableOffset, data);
        } else if (offset >= pbaOffset && offset < pbaEnd) {
          copyOut(this.#pending, offset - pbaOffset, data);
        } else {
          device.read(offset, data);
        }
      },
      write: (offset, data) => {
        if (offset >= tableOffset && offset < tableEnd) {
          this.#writeTable(offset - tableOffset, data);
        } else if (offset >= pbaOffset && offset < pbaEnd) {
          // The PBA is read-only (spec 6.8.2.10): drop the write.
        } else {
          device.write(offset, data);
        }
      },
    };
  }

  /** Control bits, table and pending bits as plain JSON. */
  save(): MsixState {
    return {
      enabled: this.#enabled,
      functionMasked: this.#functionMasked,
      table: encodeBase64(this.#table),
      pba: encodeBase64(this.#pending),
    };
  }

  /**
   * Checks a saved state (untrusted) against this function's vector count and returns the
   * function that applies it, which reprograms every route to match. A vector that is
   * pending while it could fire is refused: the device would have sent it already.
   */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    const enabled = r.boolean("enabled");
    const functionMasked = r.boolean("functionMasked");
    const table = r.bytes("table", { exact: this.#table.length });
    const pending = r.bytes("pba", { exact: this.#pending.length });
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    const vectors = this.layout.vectors;
    for (let v = 0; v < vectors; v++) {
      const control = view.getUint32(v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, true);
      if ((control & ~PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0) {
        throw new StateError(
          r.fieldPath("table"),
          `vector ${v} has control bits 0x${control.toString(16)} besides the mask bit`,
        );
      }
      const isPending = (pending[v >> 3] & (1 << (v & 7))) !== 0;
      const live = enabled && !functionMasked && (control & PCI_MSIX_ENTRY_CTRL_MASKBIT) === 0;
      if (isPending && live) {
        throw new StateError(r.fieldPath("pba"), `vector ${v} is pending but unmasked`);
      }
    }
    for (let v = vectors; v < pending.length * 8; v++) {
      if ((pending[v >> 3] & (1 << (v & 7))) !== 0) {
        throw new StateError(
          r.fieldPath("pba"),
          `bit ${v} is set but the function has ${vectors} vectors`,
        );
      }
    }
    return () => {
      this.#table.set(table);
      this.#pending.set(pending);
      this.#enabled = enabled;
      this.#functionMasked = functionMasked;
      for (let v = 0; v < vectors; v++) this.#sync(v);
    };
  }

  /** Returns every route to the controller. */
  release(): void {
    for (const route of this.#routes) route.release();
  }

  #writeTable(offset: number, data: Uint8Array): void {
    const length = Math.min(data.length, this.#table.length - offset);
    this.#table.set(data.subarray(0, length), offset);
    const first = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const last = Math.floor((offset + length - 1) / PCI_MSIX_ENTRY_SIZE);
    for (let v = first; v <= last; v++) {
      // Only the mask bit of Vector Control is writable; the rest is reserved, reads 0.
      this.#setEntryMasked(v, this.#entryMasked(v));
      this.#sync(v);
    }
  }

  /** Brings `vector`'s route in line with the table and control bits; flushes pending. */
  #sync(vector: number): void {
    const live = this.#enabled && !this.#functionMasked && !this.#entryMasked(vector);
    const wanted = live ? this.message(vector) : undefined;
    const current = this.#programmed[vector];
    if (!sameMessage(wanted, current)) {
      this.#programmed[vector] = wanted;
      this.#routes[vector].setMessage(wanted);
    }
    if (live && this.isPending(vector)) {
      this.#setPending(vector, false);
      this.#routes[vector].trigger();
    }
  }

  #entryMasked(vector: number): boolean {
    const at = vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
    return (this.#tableView.getUint32(at, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  #setEntryMasked(vector: number, masked: boolean): void {
    const at = vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
    this.#tableView.setUint32(at, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0, true);
  }

  #setPending(vector: number, pending: boolean): void {
    const bit = 1 << (vector & 7);
    if (pending) this.#pending[vector >> 3] |= bit;
    else this.#pending[vector >> 3] &= ~bit;
  }
}

/** PBA bytes for `vectors`: one bit each, in whole qwords. */
export function pbaBytes(vectors: number): number {
  return Math.ceil(vectors / 64) * 8;
}

/** Copies `source` from `offset` into `data`; bytes past the end read as 0. */
function copyOut(source: Uint8Array, offset: number, data: Uint8Array): void {
  data.fill(0);
  data.set(source.subarray(offset, offset + data.length));
}

function sameMessage(a: MsiMessage | undefined, b: MsiMessage | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.addressLo === b.addressLo && a.addressHi === b.addressHi && a.data === b.data;
}
