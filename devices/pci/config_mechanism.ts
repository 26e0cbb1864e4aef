/**
 * PCI configuration mechanism #1 (PCI 3.0, 3.2.2.3.2): a 32-bit address register at
 * 0xcf8 (enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2) and a data
 * window at 0xcfc-0xcff whose byte lanes select the bytes of the addressed dword, so a
 * byte read at 0xcfe reads register + 2. This is what Linux's pci_conf1_read/write
 * (arch/x86/pci/direct.c) drive.
 *
 * @module
 */

import type { BusDevice } from "../bus_device.ts";
import {
  type Persistable,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";

/** The configuration mechanism's latch as plain JSON. */
export interface PciConfigMechanismState extends VersionedState {
  readonly version: 1;
  /** The 0xcf8 address register as the guest last wrote it. */
  readonly address: number;
}

/** Configuration reads and writes addressed by bus, device, function and register. */
export interface PciConfigAccess {
  /** Fills `data` from `register` of the function; all ones when there is none. */
  readConfig(bus: number, device: number, fn: number, register: number, data: Uint8Array): void;
  writeConfig(bus: number, device: number, fn: number, register: number, data: Uint8Array): void;
}

const ENABLE = 0x8000_0000;
/** Bits that hold state: enable, bus, device, function, register (dword aligned). */
const ADDRESS_MASK = 0x80ff_fffc;
/** AMD's extended register bits 27:24 (registers 0x100-0xfff, absent here). */
const EXTENDED_REGISTER = 0x0f00_0000;
const DATA_OFFSET = 4;
const PORT_COUNT = 8;

/** The 0xcf8-0xcff ports, offsets 0-7 of this device. */
export class PciConfigMechanism implements BusDevice, Persistable<PciConfigMechanismState> {
  readonly #access: PciConfigAccess;
  #address = 0;

  constructor(access: PciConfigAccess) {
    this.#access = access;
  }

  /** The address register as the guest last wrote it (with the bits that hold state). */
  get address(): number {
    return this.#address;
  }

  /** The address latch. */
  save(): PciConfigMechanismState {
    return { version: 1, address: this.#address };
  }

  /** Restores the latch; a value with bits the register cannot hold is refused. */
  restore(state: unknown, path = "state"): void {
    const r = new StateReader(state, path);
    r.version([1]);
    const address = r.integer("address", 0, 0xffff_ffff);
    const extra = (address & ~(ADDRESS_MASK | EXTENDED_REGISTER)) >>> 0;
    if (extra !== 0) {
      throw new StateError(
        r.fieldPath("address"),
        `bits 0x${extra.toString(16)} do not exist in the register`,
      );
    }
    this.#address = address;
  }

  read(offset: number, data: Uint8Array): void {
    if (offset < DATA_OFFSET) {
      // Only dword accesses reach the address register; others are not PCI config cycles.
      if (offset === 0 && data.length === 4) {
        new DataView(data.buffer, data.byteOffset).setUint32(0, this.#address, true);
      } else {
        data.fill(0xff);
      }
      return;
    }
    const target = this.#target(offset, data.length);
    if (target === undefined) {
      data.fill(0xff);
      return;
    }
    this.#access.readConfig(target.bus, target.device, target.fn, target.register, data);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset < DATA_OFFSET) {
      if (offset === 0 && data.length === 4) {
        const value = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
        this.#address = (value & (ADDRESS_MASK | EXTENDED_REGISTER)) >>> 0;
      }
      return;
    }
    const target = this.#target(offset, data.length);
    if (target === undefined) return;
    this.#access.writeConfig(target.bus, target.device, target.fn, target.register, data);
  }

  /** Which register an access at data port `offset` reaches; undefined when none does. */
  #target(offset: number, length: number) {
    const address = this.#address;
    // Disabled, extended space (not emulated), or spilling past 0xcff: no config cycle.
    if ((address & ENABLE) === 0 || (address & EXTENDED_REGISTER) !== 0) return undefined;
    if (offset + length > PORT_COUNT) return undefined;
    return {
      bus: (address >>> 16) & 0xff,
      device: (address >>> 11) & 0x1f,
      fn: (address >>> 8) & 0x7,
      register: (address & 0xfc) + (offset - DATA_OFFSET),
    };
  }
}
