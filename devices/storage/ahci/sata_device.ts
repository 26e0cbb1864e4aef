/**
 * What an AHCI port asks of the device behind it (an ATA disk or an ATAPI CD-ROM): run
 * one command from its Register H2D FIS (and, for ATAPI, its 12-byte packet) against a
 * scatter list the port has already checked against guest RAM, and say how it ended in
 * ATA terms (status and error registers).
 *
 * @module
 */

import type { VersionedState } from "../../../common/persist.ts";

/** ATA status bits. */
export const ATA_STATUS_ERR = 0x01;
export const ATA_STATUS_DRQ = 0x08;
export const ATA_STATUS_DSC = 0x10;
export const ATA_STATUS_DF = 0x20;
export const ATA_STATUS_RDY = 0x40;
export const ATA_STATUS_BSY = 0x80;
/** Status of a device that completed a command. */
export const ATA_STATUS_OK = ATA_STATUS_RDY | ATA_STATUS_DSC;
/** Error register: command aborted. */
export const ATA_ERROR_ABRT = 0x04;

/** How a command ended. */
export interface CommandResult {
  /** ATA status register (ERR set on failure). */
  readonly status: number;
  /** ATA error register. */
  readonly error: number;
  /** Bytes moved through the scatter list. */
  readonly transferred: number;
  /** The command was a PIO data-in command (the port then also posts a PIO Setup FIS). */
  readonly pio?: boolean;
}

/** A successful command that moved `transferred` bytes. */
export function completed(transferred = 0, pio = false): CommandResult {
  return { status: ATA_STATUS_OK, error: 0, transferred, pio };
}

/** An aborted command. */
export function aborted(): CommandResult {
  return { status: ATA_STATUS_OK | ATA_STATUS_ERR, error: ATA_ERROR_ABRT, transferred: 0 };
}

/**
 * The guest buffers of one command (its PRDT), as live views of guest RAM the port has
 * bounds-checked: the device only ever sees these views.
 */
export class ScatterList {
  readonly #buffers: readonly Uint8Array[];
  /** Total bytes the guest offered. */
  readonly length: number;

  constructor(buffers: readonly Uint8Array[]) {
    this.#buffers = buffers;
    this.length = buffers.reduce((n, b) => n + b.length, 0);
  }

  /** Views covering exactly the first `length` bytes, or undefined if there are fewer. */
  take(length: number): Uint8Array[] | undefined {
    if (length > this.length) return undefined;
    const out: Uint8Array[] = [];
    let left = length;
    for (const buffer of this.#buffers) {
      if (left === 0) break;
      const part = buffer.subarray(0, Math.min(left, buffer.length));
      out.push(part);
      left -= part.length;
    }
    return out;
  }

  /** Copies as much of `data` as fits into the buffers; returns the bytes copied. */
  copyIn(data: Uint8Array): number {
    let at = 0;
    for (const buffer of this.#buffers) {
      if (at >= data.length) break;
      const n = Math.min(buffer.length, data.length - at);
      buffer.set(data.subarray(at, at + n));
      at += n;
    }
    return at;
  }
}

/** A device on an AHCI port. */
export interface SataDevice {
  /** Signature the port reports in PxSIG after reset: 0x00000101 disk, 0xEB140101 ATAPI. */
  readonly signature: number;
  /** Runs one command. `fis` is the 20-byte Register H2D FIS, `packet` the ATAPI command. */
  execute(fis: Uint8Array, packet: Uint8Array, data: ScatterList): CommandResult;
  /** The device's own saved state (sense data, media...). */
  save(): VersionedState;
  restore(state: unknown): void;
}
