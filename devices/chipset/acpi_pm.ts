/**
 * The ACPI fixed-hardware register block the FADT points at (PIIX4 layout): PM1 event
 * status/enable, PM1 control, the 3.579545 MHz PM timer and GPE0 status/enable. It gives
 * the guest a power button (`pressPowerButton`, raising the SCI) and a way to power off
 * (SLP_TYP = S5 with SLP_EN in PM1 control).
 *
 * Register it for `PM_BLOCK_SIZE` ports at the FADT's PM base. The machine is always in
 * ACPI mode (the FADT's SMI_CMD is 0), so SCI_EN reads as set from power-on.
 *
 * @module
 */

import { type Persistable, StateReader } from "../../common/persist.ts";
import type { BusDevice } from "../../core/bus_device.ts";
import { S5_SLEEP_TYPE } from "../firmware/acpi/dsdt.ts";
import {
  GPE0_OFFSET,
  PM1_CNT_OFFSET,
  PM_BLOCK_SIZE,
  PM_TMR_OFFSET,
} from "../firmware/acpi/tables.ts";

export { PM_BLOCK_SIZE };

/** PM1 status/enable bits. */
export const PM1_TMR = 1 << 0;
export const PM1_GBL = 1 << 5;
export const PM1_PWRBTN = 1 << 8;
export const PM1_RTC = 1 << 10;
/** PM1 status bit 15: the machine woke (write-1-to-clear, no enable bit). */
const PM1_WAK_STS = 1 << 15;
const PM1_STS_BITS = PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_RTC | PM1_WAK_STS | (1 << 4);
const PM1_EN_BITS = PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_RTC;
/** PM1 control: SCI_EN (0), SLP_TYP (10-12), SLP_EN (13, write-only). */
export const PM1_SCI_EN = 1 << 0;
export const PM1_SLP_EN = 1 << 13;
const PM1_CNT_WRITABLE = 0x1c07 & ~PM1_SCI_EN; // BM_RLD, GBL_RLS and SLP_TYP; SCI_EN is fixed
/** PM timer frequency (ACPI 4.8.3.3). */
export const PM_TIMER_HZ = 3_579_545;

/** A level-triggered interrupt line (the SCI). */
export interface IrqLine {
  setLevel(high: boolean): void;
}

/** What the block needs from the machine. */
export interface AcpiPmOptions {
  /** The SCI (ISA IRQ 9, level-triggered, active high as the MADT says). */
  readonly sci: IrqLine;
  /** The guest entered S5: power the machine off. */
  readonly onPowerOff: () => void;
  /** Nanosecond clock for the PM timer; defaults to the host's monotonic clock. */
  readonly now?: () => bigint;
}

/** Saved state (the timer is saved as its value, so it continues where it stood). */
export interface AcpiPmState {
  readonly version: 1;
  readonly pm1Status: number;
  readonly pm1Enable: number;
  readonly pm1Control: number;
  readonly gpeStatus: number;
  readonly gpeEnable: number;
  readonly timer: number;
}

/** The PM register block. */
export class AcpiPm implements BusDevice, Persistable<AcpiPmState> {
  readonly #options: AcpiPmOptions;
  readonly #now: () => bigint;
  #pm1Status = 0;
  #pm1Enable = 0;
  #pm1Control = PM1_SCI_EN;
  #gpeStatus = 0;
  #gpeEnable = 0;
  /** Clock reading (ns) at which the timer read zero. */
  #timerEpoch: bigint;
  #sciHigh = false;

  constructor(options: AcpiPmOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => BigInt(Math.round(performance.now() * 1e6)));
    this.#timerEpoch = this.#now();
  }

  /** Presses the power button: the guest's OS sees a power-button event (if enabled). */
  pressPowerButton(): void {
    this.#pm1Status |= PM1_PWRBTN;
    this.#updateSci();
  }

  /** Whether the guest enabled the power-button event (so a press will be noticed). */
  get powerButtonEnabled(): boolean {
    return (this.#pm1Enable & PM1_PWRBTN) !== 0;
  }

  /** The 24-bit PM timer now. */
  get timer(): number {
    const elapsed = this.#now() - this.#timerEpoch;
    return Number((elapsed * BigInt(PM_TIMER_HZ)) / 1_000_000_000n) & 0xff_ffff;
  }

  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.#readByte(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    // Byte by byte: status bits clear where a 1 is written, whatever the access width.
    for (let i = 0; i < data.length; i++) this.#writeByte(offset + i, data[i]);
    this.#updateSci();
  }

  save(): AcpiPmState {
    return {
      version: 1,
      pm1Status: this.#pm1Status,
      pm1Enable: this.#pm1Enable,
      pm1Control: this.#pm1Control,
      gpeStatus: this.#gpeStatus,
      gpeEnable: this.#gpeEnable,
      timer: this.timer,
    };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const pm1Status = reader.integer("pm1Status", 0, 0xffff);
    const pm1Enable = reader.integer("pm1Enable", 0, 0xffff);
    const pm1Control = reader.integer("pm1Control", 0, 0xffff);
    const gpeStatus = reader.integer("gpeStatus", 0, 0xffff);
    const gpeEnable = reader.integer("gpeEnable", 0, 0xffff);
    const timer = reader.integer("timer", 0, 0xff_ffff);
    this.#pm1Status = pm1Status & PM1_STS_BITS;
    this.#pm1Enable = pm1Enable & PM1_EN_BITS;
    this.#pm1Control = (pm1Control & PM1_CNT_WRITABLE) | PM1_SCI_EN;
    this.#gpeStatus = gpeStatus;
    this.#gpeEnable = gpeEnable;
    this.#timerEpoch = this.#now() - (BigInt(timer) * 1_000_000_000n) / BigInt(PM_TIMER_HZ);
    this.#sciHigh = false;
    this.#updateSci();
  }

  #readByte(at: number): number {
    const word = (value: number) => (at & 1 ? value >> 8 : value) & 0xff;
    if (at < 2) return word(this.#pm1Status);
    if (at < 4) return word(this.#pm1Enable);
    if (at >= PM1_CNT_OFFSET && at < PM1_CNT_OFFSET + 2) return word(this.#pm1Control);
    if (at >= PM_TMR_OFFSET && at < PM_TMR_OFFSET + 4) {
      return (this.timer >>> (8 * (at - PM_TMR_OFFSET))) & 0xff;
    }
    if (at >= GPE0_OFFSET && at < GPE0_OFFSET + 2) return word(this.#gpeStatus);
    if (at >= GPE0_OFFSET + 2 && at < GPE0_OFFSET + 4) return word(this.#gpeEnable);
    return 0;
  }

  #writeByte(at: number, byte: number): void {
    const shift = at & 1 ? 8 : 0;
    const replace = (old: number) => (old & ~(0xff << shift)) | (byte << shift);
    if (at < 2) {
      this.#pm1Status &= ~(byte << shift); // write 1 to clear
    } else if (at < 4) {
      this.#pm1Enable = replace(this.#pm1Enable) & PM1_EN_BITS;
    } else if (at >= PM1_CNT_OFFSET && at < PM1_CNT_OFFSET + 2) {
      const value = replace(this.#pm1Control);
      this.#pm1Control = (value & PM1_CNT_WRITABLE) | PM1_SCI_EN;
      if (at === PM1_CNT_OFFSET + 1 && value & PM1_SLP_EN) this.#sleep((value >> 10) & 7);
    } else if (at >= GPE0_OFFSET && at < GPE0_OFFSET + 2) {
      this.#gpeStatus &= ~(byte << shift);
    } else if (at >= GPE0_OFFSET + 2 && at < GPE0_OFFSET + 4) {
      this.#gpeEnable = replace(this.#gpeEnable);
    }
  }

  #sleep(type: number): void {
    // Only S5 is announced in the DSDT; other sleep types are not entered.
    if (type === S5_SLEEP_TYPE) this.#options.onPowerOff();
  }

  #updateSci(): void {
    const high = (this.#pm1Control & PM1_SCI_EN) !== 0 &&
      ((this.#pm1Status & this.#pm1Enable) !== 0 || (this.#gpeStatus & this.#gpeEnable) !== 0);
    if (high !== this.#sciHigh) {
      this.#sciHigh = high;
      this.#options.sci.setLevel(high);
    }
  }
}
