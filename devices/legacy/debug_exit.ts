/**
 * The debug-exit port (QEMU's `isa-debug-exit`, at 0xf4): a guest writes a status and
 * the VM ends. Test guests use it to report pass/fail without a console.
 *
 * @module
 */

import type { BusDevice } from "../bus_device.ts";

/** What the debug-exit port does with a status the guest wrote. */
export interface DebugExitOptions {
  /**
   * Called with the value written (byte, word or dword, little-endian). The VMM decides
   * the process exit code; QEMU would report `(status << 1) | 1`.
   */
  onExit: (status: number) => void;
}

/** The debug-exit port; a `BusDevice` for one port (wider accesses are accepted). */
export class DebugExit implements BusDevice {
  #onExit: (status: number) => void;
  #lastStatus: number | undefined;

  /** Creates the port; `onExit` runs on every write. */
  constructor(options: DebugExitOptions) {
    this.#onExit = options.onExit;
  }

  /** The last status written, if any. */
  get lastStatus(): number | undefined {
    return this.#lastStatus;
  }

  /** Reads return all ones, like an unclaimed ISA port. */
  read(_offset: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  /** Reports the written value (up to 4 bytes, little-endian) as the exit status. */
  write(_offset: number, data: Uint8Array): void {
    let status = 0;
    for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) status = status * 256 + data[i];
    this.#lastStatus = status;
    this.#onExit(status);
  }
}
