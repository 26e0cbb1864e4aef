import assert from "node:assert/strict";
import { CmosRtc, periodicIntervalMs, RtcConfigError } from "./rtc.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** CMOS register `index` read and written through the index (offset 0) and data (1) ports. */
function cmosRegisters(rtc: CmosRtc) {
  return {
    read(index: number): number {
      rtc.write(0, Uint8Array.of(index));
      const data = new Uint8Array(1);
      rtc.read(1, data);
      return data[0];
    },
    write(index: number, value: number): void {
      rtc.write(0, Uint8Array.of(index));
      rtc.write(1, Uint8Array.of(value));
    },
  };
}

function makeRtc(options: { below?: number; above?: number; now?: () => Date } = {}) {
  let now = options.now ?? (() => new Date(Date.UTC(2024, 1, 29, 13, 45, 56, 0)));
  const rtc = new CmosRtc({
    memoryBelow4G: options.below ?? 512 * MIB,
    memoryAbove4G: options.above ?? 0,
    clock: () => now(),
  });
  const { read, write } = cmosRegisters(rtc);
  const setClock = (clock: () => Date) => (now = clock);
  return { rtc, read, write, setClock };
}

Deno.test("time reads in BCD by default, in 24-hour mode", () => {
  const { read } = makeRtc();
  assert.deepEqual(
    [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(read),
    [0x56, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20], // Thursday = 5
  );
  assert.equal(read(0x0b) & 0x06, 0x02);
  assert.equal(read(0x0d), 0x80, "valid RAM and time");
});

Deno.test("time reads in binary when register B asks for it", () => {
  const { read, write } = makeRtc();
  write(0x0b, 0x06);
  assert.deepEqual([0x00, 0x02, 0x04, 0x09, 0x32].map(read), [56, 45, 13, 24, 20]);
});

Deno.test("12-hour mode sets the PM bit", () => {
  const { read, write } = makeRtc();
  write(0x0b, 0x00);
  assert.equal(read(0x04), 0x80 | 0x01);
});

Deno.test("the NMI mask bit of the index is ignored", () => {
  const { rtc } = makeRtc();
  rtc.write(0, Uint8Array.of(0x80 | 0x09));
  const data = new Uint8Array(1);
  rtc.read(1, data);
  assert.equal(data[0], 0x24);
});

Deno.test("UIP is reported only just before a second boundary", () => {
  let ms = 0;
  const { read } = makeRtc({ now: () => new Date(Date.UTC(2024, 0, 1, 0, 0, 0, ms)) });
  assert.equal(read(0x0a) & 0x80, 0);
  ms = 999.5;
  assert.equal(read(0x0a) & 0x80, 0x80);
  ms = 500;
  assert.equal(read(0x0a), 0x26);
});

Deno.test("setting the time under SET keeps an offset from the host clock", () => {
  let hostMs = Date.UTC(2024, 1, 29, 13, 45, 56);
  const { rtc, read, write } = makeRtc({ now: () => new Date(hostMs) });
  write(0x0b, 0x82); // SET, 24h, BCD
  write(0x09, 0x99);
  write(0x32, 0x19);
  write(0x08, 0x12);
  write(0x07, 0x31);
  write(0x04, 0x23);
  write(0x02, 0x59);
  write(0x00, 0x58);
  hostMs += 5000; // held still while SET is on
  assert.equal(read(0x00), 0x58);
  write(0x0b, 0x02);
  assert.equal(rtc.guestTime.toISOString(), "1999-12-31T23:59:58.000Z");
  hostMs += 3000; // and ticks again after
  assert.equal(rtc.guestTime.toISOString(), "2000-01-01T00:00:01.000Z");
  assert.deepEqual([0x09, 0x32, 0x08, 0x07].map(read), [0x00, 0x20, 0x01, 0x01]);
});

Deno.test("a time register write without SET applies at once", () => {
  const { read, write } = makeRtc();
  write(0x0b, 0x06); // binary
  write(0x04, 7);
  assert.equal(read(0x04), 7);
  assert.equal(read(0x02), 45, "other fields keep running from the host clock");
});

Deno.test("register C reads 0 and register D cannot be cleared", () => {
  const { read, write } = makeRtc();
  write(0x0c, 0xff);
  write(0x0d, 0x00);
  assert.equal(read(0x0c), 0);
  assert.equal(read(0x0d), 0x80);
});

Deno.test("general NVRAM bytes keep what the guest writes", () => {
  const { read, write } = makeRtc();
  write(0x40, 0xa5);
  assert.equal(read(0x40), 0xa5);
});

function word(read: (i: number) => number, index: number): number {
  return read(index) | (read(index + 1) << 8);
}

Deno.test("memory size bytes describe a 512 MiB guest", () => {
  const { read } = makeRtc({ below: 512 * MIB, above: 0 });
  assert.equal(word(read, 0x15), 640);
  assert.equal(word(read, 0x17), 0xffff, "511 MiB of extended memory saturates 16 bits");
  assert.equal(word(read, 0x30), 0xffff);
  assert.equal(word(read, 0x34), (512 - 16) * 16);
  assert.deepEqual([0x5b, 0x5c, 0x5d].map(read), [0, 0, 0]);
});

Deno.test("memory size bytes describe a 6 GiB guest split by the MMIO hole", () => {
  const { read } = makeRtc({ below: 3 * GIB, above: 3 * GIB });
  assert.equal(word(read, 0x34), (3 * 1024 - 16) * 16); // 0xbf00
  const high = read(0x5b) | (read(0x5c) << 8) | (read(0x5d) << 16);
  assert.equal(high, 3 * GIB / (64 * 1024)); // 0xc000
});

Deno.test("memory below 4 GiB is capped at the MMIO hole", () => {
  const { read } = makeRtc({ below: 4 * GIB, above: 0 });
  assert.equal(word(read, 0x34), (3 * 1024 - 16) * 16);
});

Deno.test("a negative memory size is refused with a clear error", () => {
  assert.throws(
    () => new CmosRtc({ memoryBelow4G: -1, memoryAbove4G: 0 }),
    (e: unknown) => e instanceof RtcConfigError && /memoryBelow4G/.test(e.message),
  );
});

Deno.test("the index port reads as open bus", () => {
  const { rtc } = makeRtc();
  const data = new Uint8Array(1);
  rtc.read(0, data);
  assert.equal(data[0], 0xff);
});

/** An RTC whose timer, clock and IRQ 8 line the test drives and watches. */
function periodicRtc() {
  const timers: Array<{ callback: () => void; ms: number; cleared: boolean }> = [];
  const levels: boolean[] = [];
  let now = 0;
  const rtc = new CmosRtc({
    memoryBelow4G: 64 * MIB,
    memoryAbove4G: 0,
    setIrqLevel: (high) => levels.push(high),
    timers: {
      setInterval: (callback, ms) => {
        timers.push({ callback, ms, cleared: false });
        return timers.length - 1;
      },
      clearInterval: (handle) => timers[handle as number].cleared = true,
    },
    now: () => now,
  });
  const { read, write } = cmosRegisters(rtc);
  const live = () => timers.filter((t) => !t.cleared);
  /** Moves the clock to `ms` and fires the timer. */
  const fire = (ms: number) => {
    now = ms;
    live()[0].callback();
  };
  return { rtc, read, write, levels, live, fire };
}

Deno.test("periodicIntervalMs() follows register A's rate and divider", () => {
  assert.equal(periodicIntervalMs(0x26), 1000 / 1024);
  assert.equal(periodicIntervalMs(0x2f), 500);
  assert.equal(periodicIntervalMs(0x21), periodicIntervalMs(0x28), "rate 1 repeats rate 8");
  assert.equal(periodicIntervalMs(0x20), undefined, "rate 0 is off");
  assert.equal(periodicIntervalMs(0x76), undefined, "divider held in reset");
});

Deno.test("PIE runs a timer whose periods raise IRQ 8, one at a time until C is read", () => {
  const { read, write, levels, live, fire } = periodicRtc();
  assert.equal(live().length, 0, "no timer before PIE");
  write(0x0b, 0x42); // 24 h, PIE
  assert.equal(live().length, 1);
  assert.equal(live()[0].ms, 1, "1024 Hz runs at the shortest host timer");
  fire(0.5);
  assert.deepEqual(levels, [], "no period has passed yet");
  fire(1);
  assert.deepEqual(levels, [true]);
  fire(3); // two more periods before the guest answered: owed, the line stays high
  assert.deepEqual(levels, [true]);
  assert.equal(read(0x0c), 0xc0, "IRQF and PF");
  assert.deepEqual(
    levels,
    [true, false, true],
    "reading C lowers the line; an owed period follows",
  );
  assert.equal(read(0x0c), 0xc0);
  assert.equal(read(0x0c), 0xc0, "the last owed period");
  assert.deepEqual(levels, [true, false, true, false, true, false]);
  assert.equal(read(0x0c), 0, "nothing owed: C stays clear");
  write(0x0a, 0x2f); // 2 Hz
  assert.equal(live()[0].ms, 500, "a new rate restarts the timer");
  write(0x0b, 0x02); // PIE off
  assert.equal(live().length, 0);
});

Deno.test("periods owed after a host stall are capped at one second's worth", () => {
  const { read, write, fire } = periodicRtc();
  write(0x0b, 0x42);
  fire(60_000);
  let interrupts = 0;
  while (read(0x0c) & 0x80) interrupts++;
  assert.equal(interrupts, 1024);
});

Deno.test("close() stops the periodic timer; a restore with PIE starts it again", () => {
  const { rtc, write, live } = periodicRtc();
  write(0x0b, 0x42);
  const state = rtc.save();
  rtc.close();
  assert.equal(live().length, 0);
  const other = periodicRtc();
  other.rtc.restore(state);
  assert.equal(other.live().length, 1);
  assert.equal(other.live()[0].ms, 1);
});
