/**
 * A bus of non-overlapping address ranges, each owned by one device that sees offsets
 * into its own range. Port I/O and MMIO each have one.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import type { BusDevice } from "./bus_device.ts";

/** A range that would overlap another on the same bus. */
export class BusOverlapError extends DenovisorError {
  constructor(name: string, base: number, length: number, other: BusRange) {
    super(
      "conflict",
      `Cannot place ${name} at 0x${base.toString(16)} (+0x${length.toString(16)}): it ` +
        `overlaps ${other.name} at 0x${other.base.toString(16)} (+0x${other.length.toString(16)})`,
    );
  }
}

/** A device and the range it answers. */
export interface BusRange {
  readonly base: number;
  readonly length: number;
  readonly name: string;
  readonly device: BusDevice;
}

/** Sorted, non-overlapping address ranges with a binary-search lookup. */
export class Bus {
  readonly #ranges: BusRange[] = [];

  /** Places `device` on `[base, base + length)`; throws `BusOverlapError` on overlap. */
  insert(base: number, length: number, name: string, device: BusDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || length <= 0 || base < 0) {
      throw new RangeError(`Invalid bus range for ${name}: 0x${base.toString(16)} +${length}`);
    }
    const at = this.#firstEndingAfter(base);
    const next = this.#ranges[at];
    if (next !== undefined && next.base < base + length) {
      throw new BusOverlapError(name, base, length, next);
    }
    this.#ranges.splice(at, 0, { base, length, name, device });
  }

  /** Removes the range that starts at `base`; returns whether there was one. */
  remove(base: number): boolean {
    const at = this.#ranges.findIndex((r) => r.base === base);
    if (at < 0) return false;
    this.#ranges.splice(at, 1);
    return true;
  }

  /** The range containing `address`, if any. */
  find(address: number): BusRange | undefined {
    const range = this.#ranges[this.#firstEndingAfter(address)];
    return range !== undefined && range.base <= address ? range : undefined;
  }

  /** Reads from the device at `address`; false when nothing is there. */
  read(address: number, data: Uint8Array): boolean {
    const range = this.find(address);
    if (range === undefined) return false;
    range.device.read(address - range.base, data);
    return true;
  }

  /** Writes to the device at `address`; false when nothing is there. */
  write(address: number, data: Uint8Array): boolean {
    const range = this.find(address);
    if (range === undefined) return false;
    range.device.write(address - range.base, data);
    return true;
  }

  /** All ranges in address order. */
  get ranges(): readonly BusRange[] {
    return this.#ranges;
  }

  /** Index of the first range whose end lies beyond `address`. */
  #firstEndingAfter(address: number): number {
    let low = 0;
    let high = this.#ranges.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const r = this.#ranges[mid];
      if (r.base + r.length <= address) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
