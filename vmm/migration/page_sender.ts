/**
 * Turns dirty bitmaps into MEMORY frames: runs of dirty pages are split into zero runs
 * (sent as markers, no data) and data runs, packed into frames of at most
 * `MAX_MEMORY_ENTRIES` blocks and `FRAME_DATA` bytes (within the protocol's `MAX_MEMORY_DATA`),
 * paced to a bandwidth limit.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { dirtyRuns, type RangeBitmap } from "../../core/dirty_log.ts";
import type { FrameWriter } from "./frames.ts";
import {
  Command,
  encodeMemory,
  MAX_MEMORY_ENTRIES,
  MIGRATION_PAGE_SIZE,
  type PageBlock,
} from "./protocol.ts";

const PAGE = MIGRATION_PAGE_SIZE;
const ZERO_PAGE = new Uint8Array(PAGE);
/** Longest run looked at at once (1 MiB), so blocks stay small. */
const RUN_PAGES = 256;
/**
 * The page data per MEMORY frame this sender packs (the protocol allows 16 MiB): each
 * daemon on the way forwards a frame only once it has all of it, so big frames add their
 * transfer time once per hop at the end of a round, and SYNC waits for that.
 */
export const FRAME_DATA = 1024 * 1024;

/** A range of guest RAM in this process. */
export interface RamView {
  guestAddress: number;
  bytes: Uint8Array;
}

/** What one `sendPages` call sent. */
export interface SentPages {
  dataPages: number;
  zeroPages: number;
  bytes: number;
}

/** A clock for `Pacer` (tests pass a fake one). */
export interface PacerClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const REAL_CLOCK: PacerClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Paces writes to `bytesPerSecond` (0: unlimited): each write holds the link for
 * `bytes / rate` from when it was free, so time spent not sending earns no credit. (It
 * used to average from the pacer's creation: the seconds the destination took to start
 * its VMM before round 0 let round 0 burst at several times the limit, the sender measured
 * that as the link's rate, switched over on a dirty set the real link needed seconds for,
 * and never throttled the guest.)
 */
export class Pacer {
  readonly #rate: number;
  readonly #clock: PacerClock;
  /** When the link is free again at the limit (ms on the clock). */
  #free = -Infinity;

  constructor(bytesPerSecond: number, clock: PacerClock = REAL_CLOCK) {
    this.#rate = bytesPerSecond;
    this.#clock = clock;
  }

  /** Accounts `bytes` just written and waits until the link would be free again. */
  async account(bytes: number): Promise<void> {
    if (this.#rate <= 0) return;
    const now = this.#clock.now();
    this.#free = Math.max(this.#free, now) + (bytes / this.#rate) * 1000;
    const wait = this.#free - now;
    if (wait > 1) await this.#clock.sleep(wait);
  }
}

function isZero(bytes: Uint8Array, offset: number): boolean {
  return Buffer.compare(bytes.subarray(offset, offset + PAGE), ZERO_PAGE) === 0;
}

/**
 * Sends the pages marked in `bitmaps` (one per `ram` range, same order). With
 * `skipZero`, zero pages are not sent at all (the first full pass: the destination's
 * RAM starts zeroed); otherwise they go as zero markers (a page the guest cleared).
 */
export async function sendPages(
  writer: FrameWriter,
  ram: readonly RamView[],
  bitmaps: readonly RangeBitmap[],
  options: { skipZero: boolean; pacer: Pacer },
): Promise<SentPages> {
  const sent: SentPages = { dataPages: 0, zeroPages: 0, bytes: 0 };
  let blocks: PageBlock[] = [];
  let data = 0;
  const flush = async () => {
    if (blocks.length === 0) return;
    const parts = encodeMemory(blocks);
    const before = writer.bytesSent;
    await writer.send(Command.MEMORY, ...parts);
    const bytes = writer.bytesSent - before;
    sent.bytes += bytes;
    await options.pacer.account(bytes);
    blocks = [];
    data = 0;
  };
  const add = async (block: PageBlock) => {
    const size = block.data ? block.data.length : 0;
    if (blocks.length === MAX_MEMORY_ENTRIES || data + size > FRAME_DATA) await flush();
    blocks.push(block);
    data += size;
    if (block.data) sent.dataPages += block.pageCount;
    else sent.zeroPages += block.pageCount;
  };
  for (const [index, bitmap] of bitmaps.entries()) {
    const range = ram[index];
    for (const [first, count] of dirtyRuns(bitmap, RUN_PAGES)) {
      // Split the run where pages change between zero and data.
      let runStart = first;
      let runZero = isZero(range.bytes, first * PAGE);
      for (let page = first + 1; page <= first + count; page++) {
        const end = page === first + count;
        const zero = end ? !runZero : isZero(range.bytes, page * PAGE);
        if (zero === runZero && !end) continue;
        const pageCount = page - runStart;
        const guestAddress = range.guestAddress + runStart * PAGE;
        if (!runZero) {
          const bytes = range.bytes.subarray(runStart * PAGE, page * PAGE);
          await add({ guestAddress, pageCount, data: bytes });
        } else if (!options.skipZero) {
          await add({ guestAddress, pageCount });
        }
        runStart = page;
        runZero = zero;
      }
    }
  }
  await flush();
  return sent;
}
