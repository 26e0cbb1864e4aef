/**
 * The POST code port (0x80). Firmware writes progress codes here, and Linux writes to it
 * as an I/O delay (`outb_p`), so it must exist and be cheap. It remembers the last code.
 *
 * @module
 */

import type { BusDevice } from "../bus_device.ts";

/** The POST code port; a `BusDevice` for one port. */
export class PostCode implements BusDevice {
  #lastCode: number | undefined;
  #writes = 0;

  /** The last byte written, or undefined if nothing was written yet. */
  get lastCode(): number | undefined {
    return this.#lastCode;
  }

  /** How many writes the port has seen (Linux's I/O delays count too). */
  get writes(): number {
    return this.#writes;
  }

  /** Reads return all ones, like an unclaimed ISA port. */
  read(_offset: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  /** Remembers the low byte as the last POST code. */
  write(_offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.#lastCode = data[0];
    this.#writes++;
  }
}
