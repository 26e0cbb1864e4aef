/**
 * The i440FX host bridge (PCI 00:00.0, 8086:1237) as SeaBIOS expects it: QEMU's
 * subsystem ID 1af4:1100 (SeaBIOS's qemu_detect() checks it before it reads fw_cfg),
 * and the PAM registers 0x59-0x5f that shadow 0xC0000-0xFFFFF (src/fw/shadow.c).
 *
 * A PAM change is passed to the VMM through `BiosAreaControl`: the device keeps the
 * registers, the VMM maps memory. With `preloaded` the VMM has copied the BIOS into RAM
 * at power-on, so PAM starts as "RAM, read-write" and SeaBIOS skips its copy.
 *
 * @module
 */

import type { BiosAreaAccess, BiosAreaControl } from "../../core/bios_area.ts";
import { type Persistable, StateReader } from "../../common/persist.ts";
import type { PciBar, PciCapability, PciFunction } from "../pci/pci_device.ts";

/** Intel 82441FX. */
export const I440FX_VENDOR_ID = 0x8086;
export const I440FX_DEVICE_ID = 0x1237;
/** Red Hat / QEMU subsystem IDs SeaBIOS looks for on the host bridge. */
export const QEMU_SUBSYSTEM_VENDOR_ID = 0x1af4;
export const QEMU_SUBSYSTEM_ID = 0x1100;
/** First PAM register (PAM0, the F segment); PAM1-PAM6 follow. */
export const I440FX_PAM0 = 0x59;
export const PAM_REGISTER_COUNT = 7;
/** SMRAM control register (kept, not acted on: there is no SMM). */
const I440FX_SMRAM = 0x72;
const SMRAM_DEFAULT = 0x02;

/** The ranges one PAM register controls: [start, size] of its low and high nibble. */
function pamRanges(register: number): [number, number][] {
  if (register === 0) return [[0xf0000, 0x10000]]; // PAM0: high nibble only
  const base = 0xc0000 + (register - 1) * 0x8000;
  return [[base, 0x4000], [base + 0x4000, 0x4000]];
}

const ACCESS: readonly BiosAreaAccess[] = ["rom", "read-only", "write-only", "read-write"];

/** The access a PAM nibble's RE/WE bits select. */
export function pamAccess(value: number, highNibble: boolean): BiosAreaAccess {
  return ACCESS[(highNibble ? value >> 4 : value) & 3];
}

/** Saved state: the PAM bytes and SMRAM. */
export interface I440fxState {
  readonly version: 1;
  readonly pam: readonly number[];
  readonly smram: number;
}

/** The host bridge function. */
export class I440fxHostBridge implements PciFunction, Persistable<I440fxState> {
  readonly vendorId = I440FX_VENDOR_ID;
  readonly deviceId = I440FX_DEVICE_ID;
  readonly subsystemVendorId = QEMU_SUBSYSTEM_VENDOR_ID;
  readonly subsystemId = QEMU_SUBSYSTEM_ID;
  readonly classCode = 0x060000;
  readonly revisionId = 2;
  readonly bars: readonly PciBar[] = [];
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0;
  readonly #control: BiosAreaControl;
  readonly #pam = new Uint8Array(PAM_REGISTER_COUNT);
  #smram = SMRAM_DEFAULT;

  /**
   * `preloaded`: the BIOS already sits in RAM at 0xE0000-0xFFFFF, so PAM starts as RAM
   * read-write. Otherwise it starts as on hardware: every range reads the ROM.
   */
  constructor(control: BiosAreaControl, options: { preloaded: boolean }) {
    this.#control = control;
    if (options.preloaded) {
      this.#pam[0] = 0x30;
      this.#pam.fill(0x33, 1);
    }
  }

  /** The PAM registers, PAM0 first (a copy). */
  get pam(): Uint8Array {
    return this.#pam.slice();
  }

  attach(): void {}

  readConfig(offset: number): number {
    let value = 0;
    for (let b = 3; b >= 0; b--) value = (value << 8) | this.#readByte(offset + b);
    return value >>> 0;
  }

  writeConfig(offset: number, value: number, mask: number): void {
    for (let b = 0; b < 4; b++) {
      if (((mask >>> (8 * b)) & 0xff) === 0) continue;
      this.#writeByte(offset + b, (value >>> (8 * b)) & 0xff);
    }
  }

  save(): I440fxState {
    return { version: 1, pam: [...this.#pam], smram: this.#smram };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const pam = reader.integers("pam", 0, 0xff, { exact: PAM_REGISTER_COUNT });
    const smram = reader.integer("smram", 0, 0xff);
    this.#smram = smram;
    // Re-apply every range: the restoring VMM's mappings start from scratch.
    pam.forEach((value, register) => {
      this.#pam[register] = register === 0 ? value & 0x30 : value & 0x33;
      this.#apply(register, 0xff);
    });
  }

  #readByte(offset: number): number {
    if (offset >= I440FX_PAM0 && offset < I440FX_PAM0 + PAM_REGISTER_COUNT) {
      return this.#pam[offset - I440FX_PAM0];
    }
    return offset === I440FX_SMRAM ? this.#smram : 0;
  }

  #writeByte(offset: number, value: number): void {
    if (offset === I440FX_SMRAM) {
      this.#smram = (value & 0x78) | SMRAM_DEFAULT; // D_OPEN, D_CLS, D_LCK, G_SMRAME
      return;
    }
    const register = offset - I440FX_PAM0;
    if (register < 0 || register >= PAM_REGISTER_COUNT) return;
    const old = this.#pam[register];
    this.#pam[register] = register === 0 ? value & 0x30 : value & 0x33; // only RE/WE bits exist
    this.#apply(register, old ^ this.#pam[register]);
  }

  /** Tells the VMM about the nibbles of `register` that `changed` touches. */
  #apply(register: number, changed: number): void {
    const value = this.#pam[register];
    const ranges = pamRanges(register);
    if (register === 0) {
      if (changed & 0x30) this.#control.setAccess(...ranges[0], pamAccess(value, true));
      return;
    }
    if (changed & 0x03) this.#control.setAccess(...ranges[0], pamAccess(value, false));
    if (changed & 0x30) this.#control.setAccess(...ranges[1], pamAccess(value, true));
  }
}
