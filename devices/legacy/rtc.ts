/**
 * The MC146818 CMOS real-time clock and its 128 bytes of NVRAM, at ports 0x70 (index)
 * and 0x71 (data).
 *
 * The clock runs off the host clock. When the guest sets the time, the device keeps the
 * difference as an offset (as QEMU does), so guest time keeps ticking from the new
 * value. The NVRAM also carries the memory-size bytes that firmware and old kernels read.
 * The periodic interrupt (register B's PIE) is modelled, because the PC BIOS waits with it:
 * SeaBIOS's int 15h AH=86h and int 1Ah AH=83h count IRQ 8s, so a boot loader that sleeps
 * through the BIOS never wakes without it. While PIE is set a host timer sets register C's
 * PF and IRQF at the rate register A selects and raises IRQ 8, which stays high until the
 * guest reads register C (as on the real part and in QEMU). Host timers cannot tick at
 * 1024 Hz; devices/legacy/rtc_periodic.ts keeps the guest's count of periods in real time.
 * Alarm and update-ended interrupts are not modelled (AF and UF never set), which Linux
 * copes with (it polls for the update edge).
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { BusDevice } from "../bus_device.ts";
import { MMIO_HOLE_START } from "../../core/layout.ts";
import {
  encodeBase64,
  type Persistable,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import { readNullable } from "../state_fields.ts";
import { periodicIntervalMs, PeriodicTimer, type RtcTimers } from "./rtc_periodic.ts";

export { periodicIntervalMs, type RtcTimers };

/** Offset of the index port (0x70). Bit 7 of an index write is the NMI mask: ignored. */
export const RTC_INDEX_OFFSET = 0;
/** Offset of the data port (0x71). */
export const RTC_DATA_OFFSET = 1;
/** Number of ports the RTC decodes. */
export const RTC_PORT_COUNT = 2;

const REG_SECONDS = 0x00;
const REG_MINUTES = 0x02;
const REG_HOURS = 0x04;
const REG_WEEKDAY = 0x06;
const REG_DAY_OF_MONTH = 0x07;
const REG_MONTH = 0x08;
const REG_YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
const REG_CENTURY = 0x32;
const TIME_REGISTERS = new Set([
  REG_SECONDS,
  REG_MINUTES,
  REG_HOURS,
  REG_WEEKDAY,
  REG_DAY_OF_MONTH,
  REG_MONTH,
  REG_YEAR,
  REG_CENTURY,
]);

const A_UIP = 0x80;
const A_DIVIDER_MASK = 0x70;
const A_DIVIDER_32KHZ = 0x20; // the only divider setting that lets the clock run
const B_SET = 0x80; // updates halted while the guest sets the time
const B_PIE = 0x40; // periodic interrupt enable
const C_IRQF = 0x80; // an enabled interrupt flag is set: IRQ 8 is high
const C_PF = 0x40; // a period has passed
const B_BINARY = 0x04;
const B_24H = 0x02;
const HOURS_PM = 0x80;
const D_VALID_RAM_AND_TIME = 0x80;

/**
 * How long before each second boundary register A reports an update in progress. Real
 * parts assert UIP 244 us ahead and hold it ~2 ms; 1 ms keeps Linux's mc146818_avoid_UIP()
 * loop short while still telling it not to read across a tick.
 */
const UPDATE_WINDOW_MS = 1;

const KIB = 1024;
const MIB = 1024 * KIB;
const BASE_MEMORY_KIB = 640;

/** Thrown when the RTC is given a memory size it cannot describe. */
export class RtcConfigError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Milliseconds a JS Date can hold either side of the epoch. */
const MAX_TIME_MS = 8.64e15;

/**
 * The RTC as plain JSON. The clock is saved as the guest's offset from host time, not as
 * a wall-clock value: a machine restored later reads host time plus the same offset, so
 * its clock has moved on by the time it spent saved, as a battery-backed RTC would.
 */
export interface CmosRtcState extends VersionedState {
  readonly version: 1;
  /** The 128 CMOS bytes, base64 (registers A-D and the NVRAM). */
  readonly nvram: string;
  /** The index register (0-127). */
  readonly index: number;
  /** Guest time minus host time, in milliseconds. */
  readonly offsetMs: number;
  /** While register B's SET bit holds the clock: the held guest time (ms since 1970), else null. */
  readonly heldTimeMs: number | null;
}

/** What the RTC needs to know about the machine. */
export interface RtcOptions {
  /** Bytes of guest RAM below 4 GiB (starting at 0; capped at the MMIO hole). */
  memoryBelow4G: number;
  /** Bytes of guest RAM from 4 GiB up. */
  memoryAbove4G: number;
  /** Host clock; defaults to `() => new Date()`. Tests pass a fixed one. */
  clock?: () => Date;
  /** IRQ 8's level: high while register C's IRQF is set. Without it no interrupt is raised. */
  setIrqLevel?: (high: boolean) => void;
  /** Host timers for the periodic interrupt; defaults to unref'd `setInterval`. */
  timers?: RtcTimers;
  /** Monotonic milliseconds for the periods owed; defaults to `performance.now()`. */
  now?: () => number;
}

/** An MC146818 RTC with CMOS NVRAM; a `BusDevice` for ports 0x70..0x71. */
export class CmosRtc implements BusDevice, Persistable<CmosRtcState> {
  #clock: () => Date;
  #nvram = new Uint8Array(128);
  #index = 0;
  /** Guest time minus host time, in milliseconds. */
  #offsetMs = 0;
  /** The guest time held still while register B's SET bit is on. */
  #heldTime: Date | undefined;
  #setIrqLevel: (high: boolean) => void;
  #periodic: PeriodicTimer;
  #closed = false;

  /** Creates the RTC with the memory-size bytes filled in for `options`. */
  constructor(options: RtcOptions) {
    for (const name of ["memoryBelow4G", "memoryAbove4G"] as const) {
      const value = options[name];
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RtcConfigError(
          `RTC ${name} must be a non-negative whole number of bytes, got ${value}`,
        );
      }
    }
    this.#clock = options.clock ?? (() => new Date());
    this.#setIrqLevel = options.setIrqLevel ?? (() => {});
    this.#periodic = new PeriodicTimer({
      deliver: () => this.#raisePeriodic(),
      timers: options.timers,
      now: options.now,
    });
    this.#nvram[REG_A] = A_DIVIDER_32KHZ | 0x06; // 32.768 kHz, 1024 Hz periodic rate
    this.#nvram[REG_B] = B_24H;
    this.#nvram[REG_D] = D_VALID_RAM_AND_TIME;
    this.#writeMemorySizes(options.memoryBelow4G, options.memoryAbove4G);
  }

  /** The guest's current idea of the time (host time plus the offset it set). */
  get guestTime(): Date {
    return this.#heldTime ?? new Date(this.#clock().getTime() + this.#offsetMs);
  }

  /** CMOS bytes, index and the guest's offset from host time as plain JSON. */
  save(): CmosRtcState {
    return {
      version: 1,
      nvram: encodeBase64(this.#nvram),
      index: this.#index,
      offsetMs: this.#offsetMs,
      heldTimeMs: this.#heldTime?.getTime() ?? null,
    };
  }

  /** Replaces the RTC state (untrusted: checked first, a bad one throws `StateError`). */
  restore(state: unknown, path = "state"): void {
    const r = new StateReader(state, path);
    r.version([1]);
    const nvram = r.bytes("nvram", { exact: this.#nvram.length });
    const index = r.integer("index", 0, 0x7f);
    const offsetMs = r.integer("offsetMs", -2 * MAX_TIME_MS, 2 * MAX_TIME_MS);
    const heldTimeMs = readNullable(
      r,
      "heldTimeMs",
      (name) => r.integer(name, -MAX_TIME_MS, MAX_TIME_MS),
    );
    this.#nvram.set(nvram);
    this.#index = index;
    this.#offsetMs = offsetMs;
    this.#heldTime = heldTimeMs === undefined ? undefined : new Date(heldTimeMs);
    this.#nvram[REG_C] &= C_IRQF | C_PF;
    if (this.#nvram[REG_C] & C_IRQF) this.#setIrqLevel(true); // the line was high when saved
    this.#updatePeriodicTimer();
  }

  /** Stops the periodic timer; idempotent. The device still answers the guest after. */
  close(): void {
    this.#closed = true;
    this.#updatePeriodicTimer();
  }

  /** One period for the guest: PF and IRQF set and IRQ 8 raised, unless IRQF is still set. */
  #raisePeriodic(): boolean {
    if (this.#nvram[REG_C] & C_IRQF) return false;
    this.#nvram[REG_C] |= C_IRQF | C_PF;
    this.#setIrqLevel(true);
    return true;
  }

  /** Byte-wide ports: a wider read returns the value in byte 0, zeros above. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    // The index port is write-only; like QEMU, reading it gives an open bus.
    data[0] = offset === RTC_DATA_OFFSET ? this.#readRegister(this.#index) : 0xff;
  }

  /** Byte-wide ports: a wider write uses byte 0 only. */
  write(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    if (offset === RTC_INDEX_OFFSET) this.#index = data[0] & 0x7f;
    else if (offset === RTC_DATA_OFFSET) this.#writeRegister(this.#index, data[0]);
  }

  #readRegister(index: number): number {
    if (TIME_REGISTERS.has(index)) return this.#encodeTimeField(index, this.guestTime);
    switch (index) {
      case REG_A:
        return (this.#nvram[REG_A] & ~A_UIP) | (this.#updateInProgress() ? A_UIP : 0);
      case REG_C: {
        // Reading C clears its flags and lowers IRQ 8.
        const flags = this.#nvram[REG_C];
        this.#nvram[REG_C] = 0;
        if (flags & C_IRQF) this.#setIrqLevel(false);
        this.#periodic.acknowledged(); // the next owed period, if any, right behind this one
        return flags;
      }
      default:
        return this.#nvram[index];
    }
  }

  #writeRegister(index: number, value: number): void {
    if (TIME_REGISTERS.has(index)) return this.#setTimeField(index, value);
    switch (index) {
      case REG_A:
        this.#nvram[REG_A] = value & ~A_UIP;
        return this.#updatePeriodicTimer();
      case REG_B:
        this.#writeRegisterB(value);
        return this.#updatePeriodicTimer();
      case REG_C:
      case REG_D:
        return; // read-only
      default:
        this.#nvram[index] = value;
    }
  }

  #writeRegisterB(value: number): void {
    const wasHolding = this.#heldTime !== undefined;
    if ((value & B_SET) && !wasHolding) this.#heldTime = this.guestTime;
    this.#nvram[REG_B] = value;
    if (!(value & B_SET) && wasHolding) {
      // Clearing SET restarts the clock from the time the guest wrote.
      this.#offsetMs = this.#heldTime!.getTime() - this.#clock().getTime();
      this.#heldTime = undefined;
    }
  }

  /** Runs the periodic timer while PIE is set with a rate, at that rate. */
  #updatePeriodicTimer(): void {
    const period = periodicIntervalMs(this.#nvram[REG_A]);
    this.#periodic.run(this.#closed || !(this.#nvram[REG_B] & B_PIE) ? undefined : period);
  }

  #updateInProgress(): boolean {
    const a = this.#nvram[REG_A];
    if ((a & A_DIVIDER_MASK) !== A_DIVIDER_32KHZ || this.#heldTime) return false;
    return this.guestTime.getUTCMilliseconds() >= 1000 - UPDATE_WINDOW_MS;
  }

  #binary(): boolean {
    return (this.#nvram[REG_B] & B_BINARY) !== 0;
  }

  #encode(value: number): number {
    return this.#binary() ? value : ((Math.floor(value / 10) << 4) | (value % 10));
  }

  #decode(value: number): number {
    return this.#binary() ? value : ((value >> 4) * 10 + (value & 0x0f));
  }

  #encodeTimeField(index: number, time: Date): number {
    switch (index) {
      case REG_SECONDS:
        return this.#encode(time.getUTCSeconds());
      case REG_MINUTES:
        return this.#encode(time.getUTCMinutes());
      case REG_HOURS: {
        const hours = time.getUTCHours();
        if (this.#nvram[REG_B] & B_24H) return this.#encode(hours);
        return this.#encode(hours % 12 || 12) | (hours >= 12 ? HOURS_PM : 0);
      }
      case REG_WEEKDAY:
        return this.#encode(time.getUTCDay() + 1); // 1 = Sunday
      case REG_DAY_OF_MONTH:
        return this.#encode(time.getUTCDate());
      case REG_MONTH:
        return this.#encode(time.getUTCMonth() + 1);
      case REG_YEAR:
        return this.#encode(time.getUTCFullYear() % 100);
      default: // REG_CENTURY
        return this.#encode(Math.floor(time.getUTCFullYear() / 100));
    }
  }

  /** Applies one time register write to the guest clock (or to the held time under SET). */
  #setTimeField(index: number, value: number): void {
    const t = this.guestTime;
    let [year, month, day] = [t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()];
    let [hours, minutes, seconds] = [t.getUTCHours(), t.getUTCMinutes(), t.getUTCSeconds()];
    switch (index) {
      case REG_SECONDS:
        seconds = this.#decode(value);
        break;
      case REG_MINUTES:
        minutes = this.#decode(value);
        break;
      case REG_HOURS:
        if (this.#nvram[REG_B] & B_24H) {
          hours = this.#decode(value);
        } else {
          hours = (this.#decode(value & ~HOURS_PM) % 12) + (value & HOURS_PM ? 12 : 0);
        }
        break;
      case REG_WEEKDAY:
        return; // derived from the date; nothing to keep
      case REG_DAY_OF_MONTH:
        day = this.#decode(value);
        break;
      case REG_MONTH:
        month = this.#decode(value) - 1;
        break;
      case REG_YEAR:
        year = Math.floor(year / 100) * 100 + this.#decode(value);
        break;
      case REG_CENTURY:
        year = this.#decode(value) * 100 + (year % 100);
        break;
    }
    const utc = new Date(0);
    utc.setUTCFullYear(year, month, day); // setUTCFullYear keeps years below 100 literal
    utc.setUTCHours(hours, minutes, seconds, 0);
    if (this.#heldTime) this.#heldTime = utc;
    else this.#offsetMs = utc.getTime() - this.#clock().getTime();
  }

  #writeMemorySizes(memoryBelow4G: number, memoryAbove4G: number): void {
    const below = Math.min(memoryBelow4G, MMIO_HOLE_START);
    const put16 = (index: number, value: number) => {
      this.#nvram[index] = value & 0xff;
      this.#nvram[index + 1] = (value >> 8) & 0xff;
    };
    put16(0x15, BASE_MEMORY_KIB);
    // Extended memory above 1 MiB in KiB: 16 bits, so it saturates at 64 MiB.
    const extendedKib = Math.min(Math.floor(Math.max(below - MIB, 0) / KIB), 0xffff);
    put16(0x17, extendedKib);
    put16(0x30, extendedKib);
    // Memory above 16 MiB (below the MMIO hole) in 64 KiB blocks.
    put16(0x34, Math.min(Math.floor(Math.max(below - 16 * MIB, 0) / (64 * KIB)), 0xffff));
    // Memory above 4 GiB in 64 KiB blocks: 24 bits, up to 1 TiB.
    const highBlocks = Math.min(Math.floor(memoryAbove4G / (64 * KIB)), 0xffffff);
    this.#nvram[0x5b] = highBlocks & 0xff;
    this.#nvram[0x5c] = (highBlocks >> 8) & 0xff;
    this.#nvram[0x5d] = (highBlocks >> 16) & 0xff;
  }
}
