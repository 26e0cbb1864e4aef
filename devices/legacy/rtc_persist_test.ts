import assert from "node:assert/strict";
import { CmosRtc } from "./rtc.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

const MIB = 1024 * 1024;

function makeRtc(start: number) {
  let now = start;
  const rtc = new CmosRtc({
    memoryBelow4G: 256 * MIB,
    memoryAbove4G: 0,
    clock: () => new Date(now),
  });
  const read = (index: number) => {
    rtc.write(0, Uint8Array.of(index));
    const data = new Uint8Array(1);
    rtc.read(1, data);
    return data[0];
  };
  const write = (index: number, value: number) => {
    rtc.write(0, Uint8Array.of(index));
    rtc.write(1, Uint8Array.of(value));
  };
  return { rtc, read, write, advance: (ms: number) => (now += ms) };
}

const T0 = Date.UTC(2026, 11, 2, 17, 0, 0);

Deno.test("RTC state round-trips; the guest clock keeps its offset from host time", () => {
  const source = makeRtc(T0);
  source.write(0x0b, 0x82); // SET: hold the clock while setting it
  source.write(0x09, 0x30); // year 2030
  source.write(0x0b, 0x02); // release: the guest is now ~4 years ahead of the host
  source.write(0x40, 0xab); // a free NVRAM byte
  source.read(0x00);
  const later = makeRtc(T0 + 60_000); // restored a minute later on the host
  const state = assertRoundTrip(source.rtc, later.rtc);
  assert.equal(state.heldTimeMs, null);
  assert.equal(later.read(0x40), 0xab);
  assert.equal(later.read(0x09), 0x30, "year 2030");
  assert.equal(
    later.rtc.guestTime.getTime() - source.rtc.guestTime.getTime(),
    60_000,
    "the restored clock moved on by the host time that passed",
  );
});

Deno.test("RTC held by the SET bit round-trips as the held time", () => {
  const source = makeRtc(T0);
  source.write(0x0b, 0x82);
  source.write(0x04, 0x05); // 05:00 while held
  const target = makeRtc(T0 + 5_000);
  const state = assertRoundTrip(source.rtc, target.rtc);
  assert.equal(typeof state.heldTimeMs, "number");
  assert.equal(target.read(0x04), 0x05);
  assert.equal(target.rtc.guestTime.getTime(), source.rtc.guestTime.getTime(), "still held");
});

Deno.test("RTC restore refuses malformed state and changes nothing", () => {
  const source = makeRtc(T0);
  source.write(0x0b, 0x82);
  const good = viaJson(source.rtc.save());
  const report = fuzzRestore(makeRtc(T0).rtc, good, {
    lenient: ["state.heldTimeMs"],
    mustRefuse: [
      { ...good, index: 128 },
      { ...good, nvram: btoa("x".repeat(127)) },
      { ...good, offsetMs: 0.5 },
    ],
  });
  assert.ok(report.refused > 20, `only ${report.refused} of ${report.tried} refused`);
});
