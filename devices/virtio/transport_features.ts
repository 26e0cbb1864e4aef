/**
 * Feature negotiation as both virtio transports expose it (virtio 1.2, section 2.2):
 * 32-bit windows onto the offered and the accepted 64-bit feature sets, chosen by select
 * registers, and the check made when the driver sets FEATURES_OK.
 *
 * @module
 */

import { VIRTIO_F } from "./virtio_device.ts";

/** Reports a driver mistake; `kind` lets the caller log each kind once. */
export type Offence = (kind: string, message: string) => void;

/** The feature select windows and the driver's accepted features of one device. */
export class FeatureNegotiation {
  readonly offered: bigint;
  readonly #offence: Offence;
  #deviceSelect = 0;
  #driverSelect = 0;
  #accepted = 0n;
  #locked = false;

  constructor(offered: bigint, offence: Offence) {
    this.offered = offered;
    this.#offence = offence;
  }

  /** Which 32 offered bits `readDevice()` shows (0: bits 0-31, 1: bits 32-63). */
  get deviceSelect(): number {
    return this.#deviceSelect;
  }

  set deviceSelect(value: number) {
    this.#deviceSelect = value >>> 0;
  }

  /** Which 32 accepted bits `readDriver()`/`writeDriver()` address. */
  get driverSelect(): number {
    return this.#driverSelect;
  }

  set driverSelect(value: number) {
    this.#driverSelect = value >>> 0;
  }

  /** The offered bits in the selected window (0 past bit 63). */
  readDevice(): number {
    return window(this.offered, this.#deviceSelect);
  }

  /** The accepted bits in the selected window. */
  readDriver(): number {
    return window(this.#accepted, this.#driverSelect);
  }

  /** The driver accepts 32 bits in the selected window; ignored once FEATURES_OK is set. */
  writeDriver(value: number): void {
    if (this.#locked) {
      this.#offence("features-late", "the driver wrote features after FEATURES_OK (ignored)");
      return;
    }
    const select = this.#driverSelect;
    if (select > 1) {
      if (value !== 0) this.#offence("features-window", "the driver set feature bits past 63");
      return;
    }
    const shift = BigInt(select * 32);
    const mask = 0xffff_ffffn << shift;
    this.#accepted = (this.#accepted & ~mask) | (BigInt(value >>> 0) << shift);
  }

  /** All 64 bits the driver accepted. */
  get accepted(): bigint {
    return this.#accepted;
  }

  /**
   * The FEATURES_OK check: the accepted set must be a subset of the offered one and
   * include VIRTIO_F_VERSION_1 (legacy drivers are not served). Locks the set on success.
   */
  settle(): boolean {
    if ((this.#accepted & ~this.offered) !== 0n) {
      this.#offence("features-unoffered", "the driver accepted features that were not offered");
      return false;
    }
    if ((this.#accepted & VIRTIO_F.VERSION_1) === 0n) {
      this.#offence("features-legacy", "the driver did not accept VIRTIO_F_VERSION_1");
      return false;
    }
    this.#locked = true;
    return true;
  }

  /** Whether the accepted set is locked (FEATURES_OK was accepted). */
  get locked(): boolean {
    return this.#locked;
  }

  /** Sets every field from a checked saved state (see transport_persist.ts). */
  load(
    saved: { deviceSelect: number; driverSelect: number; accepted: bigint; locked: boolean },
  ): void {
    this.#deviceSelect = saved.deviceSelect;
    this.#driverSelect = saved.driverSelect;
    this.#accepted = saved.accepted;
    this.#locked = saved.locked;
  }

  /** Back to the state after a device reset. */
  reset(): void {
    this.#deviceSelect = 0;
    this.#driverSelect = 0;
    this.#accepted = 0n;
    this.#locked = false;
  }
}

function window(features: bigint, select: number): number {
  if (select > 1) return 0;
  return Number((features >> BigInt(select * 32)) & 0xffff_ffffn);
}
