/**
 * The PIIX reset control register at port 0xcf9 (the FADT's reset register, and what
 * SeaBIOS and Linux's "reboot=pci" write): setting RST_CPU (bit 2) resets the machine;
 * SYS_RST (bit 1) chooses a hard reset, which for a VM is the same.
 *
 * 0xcf9 lies inside the PCI configuration ports 0xcf8-0xcff, where only dword accesses
 * at 0xcf8 reach the address register. `withResetControl` puts both behind one device:
 * byte accesses at offset 1 go to this register, everything else to the config ports.
 *
 * @module
 */

import { type Persistable, StateReader } from "../../common/persist.ts";
import type { BusDevice } from "../../core/bus_device.ts";

/** The reset control port. */
export const RESET_CONTROL_PORT = 0xcf9;
/** The value the FADT tells the OS to write: SYS_RST | RST_CPU. */
export const RESET_VALUE = 0x06;
const RST_CPU = 0x04;
const SYS_RST = 0x02;
/** Offset of 0xcf9 within the 0xcf8-0xcff range. */
const OFFSET_IN_CONFIG_PORTS = 1;

/** The reset control register. */
export class ResetControl implements BusDevice, Persistable<{ version: 1; value: number }> {
  readonly #onReset: () => void;
  #value = 0;

  /** `onReset` is called when the guest asks for a reset. */
  constructor(onReset: () => void) {
    this.#onReset = onReset;
  }

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.#value;
  }

  write(_offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const value = data[0];
    // A reset happens on the 0 -> 1 transition of RST_CPU (PIIX4 datasheet, 4.1.4).
    const reset = (value & RST_CPU) !== 0 && (this.#value & RST_CPU) === 0;
    this.#value = value & SYS_RST; // RST_CPU does not stick
    if (reset) this.#onReset();
  }

  save(): { version: 1; value: number } {
    return { version: 1, value: this.#value };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    this.#value = reader.integer("value", 0, 0xff) & SYS_RST;
  }
}

/** One device for ports 0xcf8-0xcff: the reset register at 0xcf9, config cycles elsewhere. */
export function withResetControl(configPorts: BusDevice, reset: ResetControl): BusDevice {
  const isReset = (offset: number, data: Uint8Array) =>
    offset === OFFSET_IN_CONFIG_PORTS && data.length === 1;
  return {
    read: (offset, data) =>
      isReset(offset, data) ? reset.read(0, data) : configPorts.read(offset, data),
    write: (offset, data) =>
      isReset(offset, data) ? reset.write(0, data) : configPorts.write(offset, data),
  };
}
