import assert from "node:assert/strict";
import {
  countDirty,
  DeviceDirtyBitmap,
  DIRTY_PAGE_SIZE,
  dirtyRuns,
  emptyBitmaps,
  orBitmaps,
  orSlotBits,
  type RangeBitmap,
  slotRamPieces,
} from "./dirty_log.ts";
import type { MappedRange } from "./memory.ts";
import { GuestMemory } from "./guest_memory.ts";
import { dirtyBitmapWords, encodeDirtyLog } from "../ffi/kvm/dirty_log.ts";

const PAGE = DIRTY_PAGE_SIZE;
const RANGES = [{ start: 0, size: 64 * PAGE }, { start: 0x100000, size: 40 * PAGE }];

function pagesOf(bitmaps: RangeBitmap[]): string[] {
  const out: string[] = [];
  for (const bitmap of bitmaps) {
    for (const [first, count] of dirtyRuns(bitmap, 1 << 20)) {
      out.push(`${(bitmap.start + first * PAGE).toString(16)}+${count}`);
    }
  }
  return out;
}

function memory(): GuestMemory {
  return new GuestMemory(RANGES.map((r) => ({ start: r.start, bytes: new Uint8Array(r.size) })));
}

Deno.test("GuestMemory marks every write path while tracking, and reads not at all", () => {
  const guest = memory();
  const dirty = new DeviceDirtyBitmap(RANGES);
  guest.writeU32(0, 1); // untracked yet
  guest.trackWrites(dirty);
  guest.writeU8(1 * PAGE, 1);
  guest.writeU16(2 * PAGE + 4094, 1); // the last two bytes of page 2
  guest.writeU64(0x100000 + 5 * PAGE, 1n);
  guest.fill(10 * PAGE + 1, PAGE, 0xff); // straddles pages 10 and 11
  guest.write(63 * PAGE, new Uint8Array(8));
  guest.slice(0x100000 + 39 * PAGE, 16); // a view a device may write later
  guest.read(30 * PAGE, 100);
  guest.readU64(31 * PAGE);
  assert.deepEqual(pagesOf(dirty.take()), ["1000+2", "a000+2", "3f000+1", "105000+1", "127000+1"]);
  guest.trackWrites(null);
  guest.writeU8(20 * PAGE, 1);
  guest.trackWrites(dirty);
  // Nothing new: the previous round's pages come back once (a late asynchronous write).
  assert.deepEqual(pagesOf(dirty.take()), ["1000+2", "a000+2", "3f000+1", "105000+1", "127000+1"]);
  assert.deepEqual(pagesOf(dirty.take()), []);
});

Deno.test("a bitmap shared with another thread's instance sees its marks", () => {
  const owner = new DeviceDirtyBitmap(RANGES);
  const worker = new DeviceDirtyBitmap(RANGES, owner.buffer);
  worker.mark(0x100000 + 33 * PAGE, 2 * PAGE);
  worker.mark(0x200000, PAGE); // outside RAM: ignored
  assert.deepEqual(pagesOf(owner.take()), ["121000+2"]);
  assert.throws(() => new DeviceDirtyBitmap(RANGES, new SharedArrayBuffer(4)), RangeError);
});

Deno.test("dirtyRuns() splits at maxPages and skips clean words", () => {
  const [bitmap] = emptyBitmaps([{ start: 0, size: 100 * PAGE }]);
  for (const page of [0, 1, 2, 3, 4, 31, 32, 33, 99]) bitmap.bits[page >>> 5] |= 1 << (page & 31);
  assert.deepEqual([...dirtyRuns(bitmap, 3)], [[0, 3], [3, 2], [31, 3], [99, 1]]);
  assert.equal(countDirty([bitmap]), 9);
  const [other] = emptyBitmaps([{ start: 0, size: 100 * PAGE }]);
  other.bits[2] = 0x80000000; // page 95
  orBitmaps([bitmap], [other]);
  assert.deepEqual([...dirtyRuns(bitmap, 100)], [[0, 5], [31, 3], [95, 1], [99, 1]]);
});

Deno.test("KVM dirty log buffers are whole 64-bit words and the struct carries the pointer", () => {
  assert.equal(dirtyBitmapWords(1), 2);
  assert.equal(dirtyBitmapWords(64), 2);
  assert.equal(dirtyBitmapWords(65), 4);
  assert.equal(emptyBitmaps([{ start: 0, size: 65 * PAGE }])[0].bits.length, 4);
  const bytes = encodeDirtyLog(3, 0x7f00_1234_5000n);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 16);
  assert.equal(view.getUint32(0, true), 3);
  assert.equal(view.getUint32(4, true), 0);
  assert.equal(view.getBigUint64(8, true), 0x7f00_1234_5000n);
});

// A firmware boot's low RAM as PAM splits it (core/bios_shadow.ts): host memory at H.
const H = 0x7f00_0000_0000n;
const LOW: MappedRange[] = [{ start: 0, size: 2 << 20, hostAddress: H }];

function slot(guest: number, size: number, host: bigint) {
  return { guestPhysAddr: guest, memorySize: size, userspaceAddr: host };
}

Deno.test("slotRamPieces maps a slot back to the RAM pages behind it by host address", () => {
  // [0, 0xC0000): pages 0-191 of the range.
  assert.deepEqual(slotRamPieces(slot(0, 0xc_0000, H), LOW), [
    { range: 0, slotPage: 0, rangePage: 0, pages: 192 },
  ]);
  // RAM above 1 MiB: page 256 on.
  assert.deepEqual(slotRamPieces(slot(0x10_0000, 0x10_0000, H + 0x10_0000n), LOW), [
    { range: 0, slotPage: 0, rangePage: 256, pages: 256 },
  ]);
  // A 16 KiB shadow range of the C segment, whatever guest address shows it.
  assert.deepEqual(slotRamPieces(slot(0xc_4000, 0x4000, H + 0xc_4000n), LOW), [
    { range: 0, slotPage: 0, rangePage: 196, pages: 4 },
  ]);
  // The ROM (the firmware image's own mapping) is not RAM.
  assert.deepEqual(slotRamPieces(slot(0xf_0000, 0x1_0000, 0x7e00_0000_0000n), LOW), []);
  // A slot half over RAM: only that half; two ranges: a piece each.
  assert.deepEqual(slotRamPieces(slot(0, 0x4000, H - 0x2000n), LOW), [
    { range: 0, slotPage: 2, rangePage: 0, pages: 2 },
  ]);
  const two: MappedRange[] = [
    { start: 0, size: 0x4000, hostAddress: H },
    { start: 0x1_0000_0000, size: 0x4000, hostAddress: H + 0x4000n },
  ];
  assert.deepEqual(slotRamPieces(slot(0, 0x8000, H), two), [
    { range: 0, slotPage: 0, rangePage: 0, pages: 4 },
    { range: 1, slotPage: 4, rangePage: 0, pages: 4 },
  ]);
});

Deno.test("orSlotBits moves a slot's dirty bits to the RAM pages, or marks them all", () => {
  const bitmaps = emptyBitmaps(LOW);
  // The F segment's slot (64 KiB at 0xF0000): its pages 0 and 15 are range pages 240, 255.
  const fSegment = slotRamPieces(slot(0xf_0000, 0x1_0000, H + 0xf_0000n), LOW);
  const bits = new Uint32Array(dirtyBitmapWords(16));
  bits[0] = 1 | (1 << 15);
  orSlotBits(bitmaps, fSegment, bits);
  // Above 1 MiB, word-aligned: slot pages 0, 33 and 255 are range pages 256 (a run with
  // 255), 289 and 511.
  const high = slotRamPieces(slot(0x10_0000, 0x10_0000, H + 0x10_0000n), LOW);
  const highBits = new Uint32Array(dirtyBitmapWords(256));
  highBits[0] = 1;
  highBits[1] = 2;
  highBits[7] = 1 << 31;
  orSlotBits(bitmaps, high, highBits);
  assert.deepEqual(pagesOf(bitmaps), ["f0000+1", "ff000+2", "121000+1", "1ff000+1"]);
  // A re-registered slot (KVM dropped its log): all its RAM pages.
  const all = emptyBitmaps(LOW);
  orSlotBits(all, slotRamPieces(slot(0xc_4000, 0x4000, H + 0xc_4000n), LOW), null);
  orSlotBits(all, high, null);
  assert.deepEqual(pagesOf(all), ["c4000+4", "100000+256"]);
  assert.equal(countDirty(all), 260);
});
