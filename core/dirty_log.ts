/**
 * Dirty page tracking for live migration. KVM logs the pages the guest's vCPUs write
 * (KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG), but not the pages the VMM itself writes
 * into guest RAM from user space: virtio used rings, received frames, block reads, fw_cfg
 * DMA. `DeviceDirtyBitmap` records those: `GuestMemory` marks it on every write path
 * (writes, fills, and every `slice()` view, since a view handed to a device may be
 * written through preadv). A round's dirty set is the OR of both. A view taken before
 * tracking began and kept (a virtio queue's used ring) is not seen: its owner marks it
 * (vmm/migration/machine_source.ts marks the used rings every round).
 *
 * The device bitmap lives in a SharedArrayBuffer and is marked with Atomics, so vCPU
 * Workers that emulate devices on their own `GuestMemory` views can mark the same one.
 *
 * @module
 */

import { dirtyBitmapWords, getDirtyLog } from "../ffi/kvm/dirty_log.ts";
import { KVM_MEM_LOG_DIRTY_PAGES } from "../ffi/kvm/vm_structs.ts";
import type { GuestAddress, WriteTracker } from "./guest_memory.ts";
import type { MappedRange } from "./memory.ts";
import type { Vm } from "./vm.ts";

/** Dirty logging granularity: x86 pages. */
export const DIRTY_PAGE_SIZE = 4096;

/** A RAM range as tracked: its guest address and size in bytes (whole pages). */
export interface TrackedRange {
  start: GuestAddress;
  size: number;
}

/** One range's dirty pages: bit n of word n >> 5 is the range's page n. */
export interface RangeBitmap {
  start: GuestAddress;
  pages: number;
  bits: Uint32Array;
}

/** Allocates an empty bitmap per range (sized as KVM writes them). */
export function emptyBitmaps(ranges: readonly TrackedRange[]): RangeBitmap[] {
  return ranges.map((range) => {
    const pages = Math.ceil(range.size / DIRTY_PAGE_SIZE);
    // An explicit ArrayBuffer: its backing store is off V8's heap and does not move.
    const bits = new Uint32Array(new ArrayBuffer(dirtyBitmapWords(pages) * 4));
    return { start: range.start, pages, bits };
  });
}

/** ORs `from` into `into` (same ranges, same sizes). */
export function orBitmaps(into: RangeBitmap[], from: readonly RangeBitmap[]): RangeBitmap[] {
  into.forEach((bitmap, index) => {
    const other = from[index].bits;
    for (let word = 0; word < bitmap.bits.length; word++) bitmap.bits[word] |= other[word];
  });
  return into;
}

/** The number of dirty pages in `bitmaps`. */
export function countDirty(bitmaps: readonly RangeBitmap[]): number {
  let count = 0;
  for (const bitmap of bitmaps) {
    for (const word of bitmap.bits) {
      let w = word;
      while (w !== 0) {
        w &= w - 1;
        count++;
      }
    }
  }
  return count;
}

/** The runs of dirty pages of one bitmap, as [first page, page count], each <= maxPages. */
export function* dirtyRuns(bitmap: RangeBitmap, maxPages: number): Generator<[number, number]> {
  const dirty = (page: number) => (bitmap.bits[page >>> 5] & (1 << (page & 31))) !== 0;
  let page = 0;
  while (page < bitmap.pages) {
    if ((page & 31) === 0 && bitmap.bits[page >>> 5] === 0) {
      page += 32; // a clean word: 32 pages at once
      continue;
    }
    if (!dirty(page)) {
      page++;
      continue;
    }
    const first = page;
    while (page < bitmap.pages && dirty(page) && page - first < maxPages) page++;
    yield [first, page - first];
  }
}

/**
 * Pages the VMM's own code wrote into guest RAM while tracking is on. `mark` is cheap
 * (a few Atomics.or per call) and safe from several threads sharing `buffer`.
 */
export class DeviceDirtyBitmap implements WriteTracker {
  readonly #ranges: readonly TrackedRange[];
  readonly #offsets: number[] = [];
  readonly #words: Int32Array;
  #lingering: RangeBitmap[] | null = null;

  /** `buffer` is another thread's bitmap to share (`DeviceDirtyBitmap.buffer`). */
  constructor(ranges: readonly TrackedRange[], buffer?: SharedArrayBuffer) {
    this.#ranges = ranges;
    let words = 0;
    for (const range of ranges) {
      this.#offsets.push(words);
      words += Math.ceil(Math.ceil(range.size / DIRTY_PAGE_SIZE) / 32);
    }
    const shared = buffer ?? new SharedArrayBuffer(Math.max(words, 1) * 4);
    if (shared.byteLength < words * 4) throw new RangeError("Dirty bitmap buffer too small");
    this.#words = new Int32Array(shared);
  }

  /** The shared memory, to hand to a Worker. */
  get buffer(): SharedArrayBuffer {
    return this.#words.buffer as SharedArrayBuffer;
  }

  /** Marks the pages of `[address, address + length)` (parts outside RAM are ignored). */
  mark(address: GuestAddress, length: number): void {
    if (length <= 0) return;
    for (let index = 0; index < this.#ranges.length; index++) {
      const range = this.#ranges[index];
      const from = Math.max(address, range.start);
      const to = Math.min(address + length, range.start + range.size);
      if (from >= to) continue;
      const first = Math.floor((from - range.start) / DIRTY_PAGE_SIZE);
      const last = Math.floor((to - 1 - range.start) / DIRTY_PAGE_SIZE);
      const base = this.#offsets[index];
      for (let page = first; page <= last; page++) {
        Atomics.or(this.#words, base + (page >>> 5), 1 << (page & 31));
      }
    }
  }

  /**
   * The pages marked since the last call, and those marked in the round before it: a
   * view is marked when a device takes it, but an asynchronous request (a block read)
   * may write it after a `take()` that already sent the page, so each marked page is
   * sent in two consecutive rounds. The final round, taken with the machine paused and
   * its device requests completed, is then complete as long as no request stayed in
   * flight for a whole round.
   */
  take(): RangeBitmap[] {
    const bitmaps = emptyBitmaps(this.#ranges);
    const lingering = this.#lingering ?? emptyBitmaps(this.#ranges);
    bitmaps.forEach((bitmap, index) => {
      const base = this.#offsets[index];
      const words = Math.ceil(bitmap.pages / 32);
      for (let word = 0; word < words; word++) {
        bitmap.bits[word] = Atomics.exchange(this.#words, base + word, 0) >>> 0;
      }
    });
    this.#lingering = bitmaps.map((b) => ({ ...b, bits: b.bits.slice() }));
    return orBitmaps(bitmaps, lingering);
  }
}

/** A KVM memory slot as registered: where the guest sees it, what host memory backs it. */
export interface SlotRegion {
  readonly guestPhysAddr: number;
  readonly memorySize: number;
  readonly userspaceAddr: bigint;
}

/** A run of a slot's pages that are RAM: page `slotPage` on is `range`'s page `rangePage` on. */
export interface SlotRamPiece {
  readonly range: number;
  readonly slotPage: number;
  readonly rangePage: number;
  readonly pages: number;
}

/**
 * The RAM pages a KVM slot covers, found by host address: a slot maps host memory, and
 * the RAM a migration sends is the host memory of `ranges` (by range and offset), whatever
 * guest address a slot shows it at. A slot on other memory (the firmware image's ROM)
 * covers no RAM: its pages are not sent.
 */
export function slotRamPieces(
  slot: SlotRegion,
  ranges: readonly MappedRange[],
): SlotRamPiece[] {
  const pieces: SlotRamPiece[] = [];
  const slotStart = slot.userspaceAddr;
  const slotEnd = slotStart + BigInt(slot.memorySize);
  ranges.forEach((range, index) => {
    const rangeEnd = range.hostAddress + BigInt(range.size);
    const from = slotStart > range.hostAddress ? slotStart : range.hostAddress;
    const to = slotEnd < rangeEnd ? slotEnd : rangeEnd;
    if (from >= to) return;
    const page = BigInt(DIRTY_PAGE_SIZE);
    const first = (from - range.hostAddress) / page;
    const last = (to - 1n - range.hostAddress) / page;
    pieces.push({
      range: index,
      slotPage: Number((from - slotStart) / page),
      rangePage: Number(first),
      pages: Number(last - first) + 1,
    });
  });
  return pieces;
}

/** ORs a slot's bitmap (bit n = slot page n) into the RAM bitmaps it covers. */
export function orSlotBits(
  into: RangeBitmap[],
  pieces: readonly SlotRamPiece[],
  slotBits: Uint32Array | null,
): void {
  for (const piece of pieces) {
    const bits = into[piece.range].bits;
    const aligned = piece.slotPage % 32 === 0 && piece.rangePage % 32 === 0;
    let page = 0;
    if (aligned) {
      // Whole words at once (every slot Denovisor registers starts on a 128 KiB boundary).
      const from = piece.slotPage >>> 5;
      const to = piece.rangePage >>> 5;
      for (; page + 32 <= piece.pages; page += 32) {
        bits[to + (page >>> 5)] |= slotBits === null ? 0xffff_ffff : slotBits[from + (page >>> 5)];
      }
    }
    for (; page < piece.pages; page++) {
      const slotPage = piece.slotPage + page;
      if (slotBits !== null && (slotBits[slotPage >>> 5] & (1 << (slotPage & 31))) === 0) continue;
      const rangePage = piece.rangePage + page;
      bits[rangePage >>> 5] |= 1 << (rangePage & 31);
    }
  }
}

/**
 * KVM's dirty log over whatever memory slots the machine has (`Vm.memorySlots`), mapped
 * back to its RAM ranges by `slotRamPieces`: one slot per RAM range as `GuestRam.allocate`
 * registers them, or a firmware boot's low RAM split by PAM into the BIOS area's slots
 * (core/bios_shadow.ts), some read-only, some on the ROM. A slot registered, replaced or
 * deleted while logging is on (a PAM write) is logged from then on, but KVM dropped the
 * dirty log of what it replaced: every RAM page of the old and the new slot counts as
 * dirty in the next `fetch`.
 */
export class KvmDirtyLog {
  readonly #vm: Vm;
  readonly #ranges: readonly MappedRange[];
  /** Pages of slots changed since the last fetch; null while logging is off. */
  #changed: RangeBitmap[] | null = null;

  constructor(vm: Vm, ranges: readonly MappedRange[]) {
    this.#vm = vm;
    this.#ranges = ranges;
  }

  /** Turns logging on for every writable slot; pages written from now on are logged. */
  start(): void {
    this.#changed = emptyBitmaps(this.#ranges);
    this.#vm.logDirtyPages((previous, next) => {
      for (const region of [previous, next]) {
        if (region && this.#changed) {
          orSlotBits(this.#changed, slotRamPieces(region, this.#ranges), null);
        }
      }
    });
  }

  /** The pages written since `start` or the last `fetch` (the kernel clears its log). */
  fetch(): RangeBitmap[] {
    const bitmaps = this.#changed ?? emptyBitmaps(this.#ranges);
    if (this.#changed) this.#changed = emptyBitmaps(this.#ranges);
    for (const [slot, region] of this.#vm.memorySlots) {
      if ((region.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0) continue;
      const pieces = slotRamPieces(region, this.#ranges);
      const pages = Math.ceil(region.memorySize / DIRTY_PAGE_SIZE);
      const whole = pieces.length === 1 && pieces[0].slotPage === 0 &&
        pieces[0].rangePage === 0 && pieces[0].pages === bitmaps[pieces[0].range].pages;
      if (whole && countDirty([bitmaps[pieces[0].range]]) === 0) {
        // The slot is its whole range (no firmware split): the kernel writes straight in.
        getDirtyLog(this.#vm.fd, slot, bitmaps[pieces[0].range].bits);
        continue;
      }
      const bits = new Uint32Array(new ArrayBuffer(dirtyBitmapWords(pages) * 4));
      getDirtyLog(this.#vm.fd, slot, bits); // cleared even when it covers no RAM
      orSlotBits(bitmaps, pieces, bits);
    }
    return bitmaps;
  }

  /** Turns logging off again (a cancelled migration: the guest runs at full speed). */
  stop(): void {
    if (this.#changed === null) return;
    this.#changed = null;
    this.#vm.logDirtyPages(null);
  }
}
