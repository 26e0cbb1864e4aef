/**
 * The MC146818's periodic interrupt on a host timer (devices/legacy/rtc.ts owns the
 * registers; this owns the timing). Host timers cannot tick at 1024 Hz: the periods that
 * pass between two host ticks are owed and handed to the RTC one after the other, the
 * next as soon as the guest has acknowledged the last (read register C), up to one
 * second's worth (a longer stall is dropped). So a wait counted in interrupts, such as
 * SeaBIOS's int 15h AH=86h, keeps real time, as QEMU's "slew" policy does for the guests
 * that count RTC ticks.
 *
 * @module
 */

/** The shortest host timer used, in milliseconds. */
const MIN_TIMER_MS = 1;

/** Host timers, so tests can drive the periodic interrupt by hand. */
export interface RtcTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const HOST_TIMERS: RtcTimers = {
  setInterval: (callback, ms) => {
    const handle = setInterval(callback, ms);
    handle.unref(); // the clock never keeps a finished VMM alive
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

const A_DIVIDER_MASK = 0x70;
const A_DIVIDER_32KHZ = 0x20;
const A_RATE_MASK = 0x0f;

/**
 * The periodic interrupt's period in milliseconds for register A's rate bits, or
 * undefined when the rate (0) or the divider turns it off. Rates 1 and 2 repeat 8 and 9.
 */
export function periodicIntervalMs(registerA: number): number | undefined {
  if ((registerA & A_DIVIDER_MASK) !== A_DIVIDER_32KHZ) return undefined;
  let rate = registerA & A_RATE_MASK;
  if (rate === 0) return undefined;
  if (rate <= 2) rate += 7;
  return (1000 * (1 << (rate - 1))) / 32768;
}

/** What the timer needs. */
export interface PeriodicTimerOptions {
  /**
   * Signals one period to the guest (sets PF and IRQF, raises IRQ 8); false when the last
   * one is not acknowledged yet, so the period stays owed.
   */
  readonly deliver: () => boolean;
  /** Host timers; defaults to unref'd `setInterval`. */
  readonly timers?: RtcTimers;
  /** Monotonic milliseconds; defaults to `performance.now()`. */
  readonly now?: () => number;
}

/** The running host timer and the periods it counted. */
interface Running {
  readonly handle: unknown;
  readonly period: number;
  /** The time up to which periods were counted. */
  counted: number;
  /** Periods counted but not yet delivered. */
  owed: number;
}

/** The periodic interrupt's timer: run at a period, stopped, retried after an ack. */
export class PeriodicTimer {
  readonly #deliver: () => boolean;
  readonly #timers: RtcTimers;
  readonly #now: () => number;
  #running: Running | undefined;

  constructor(options: PeriodicTimerOptions) {
    this.#deliver = options.deliver;
    this.#timers = options.timers ?? HOST_TIMERS;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Runs at `period` ms (a new period restarts the count), or stops for undefined. */
  run(period: number | undefined): void {
    if (this.#running?.period === period) return;
    if (this.#running) this.#timers.clearInterval(this.#running.handle);
    this.#running = undefined;
    if (period === undefined) return;
    const ms = Math.max(period, MIN_TIMER_MS);
    this.#running = {
      handle: this.#timers.setInterval(() => this.#onTimer(), ms),
      period,
      counted: this.#now(),
      owed: 0,
    };
  }

  /** The guest acknowledged a period: hands it the next owed one, if any. */
  acknowledged(): void {
    const running = this.#running;
    if (running && running.owed > 0 && this.#deliver()) running.owed--;
  }

  #onTimer(): void {
    const running = this.#running;
    if (!running) return;
    const passed = Math.floor((this.#now() - running.counted) / running.period);
    if (passed <= 0) return;
    running.counted += passed * running.period;
    running.owed = Math.min(running.owed + passed, Math.ceil(1000 / running.period));
    if (this.#deliver()) running.owed--;
  }
}
