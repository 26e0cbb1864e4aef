/**
 * Guest RAM inline in a state file, for `save` to a pipe or a stream where no companion
 * memory file can be written. Zero pages are left out; what remains is a sequence of
 * records, each a 16-byte header and the pages it announces:
 *
 * ```
 * 0   8   guest physical address of the first page (u64 LE, page aligned)
 * 8   4   page count (u32 LE, >= 1)
 * 12  4   reserved, zero
 * 16  4096 x count   the pages
 * ```
 *
 * Records are in ascending address order, never overlap and never cross the end of a RAM
 * range; the reader checks all of it, since the stream is untrusted.
 *
 * @module
 */

import type { MemoryRangeRecord } from "./state_document.ts";
import { nonZeroRuns } from "./page_runs.ts";
import { PAGE_SIZE, StateFileError } from "./state_format.ts";

/** Size of a record header. */
export const RECORD_HEADER_SIZE = 16;

/** A range of guest RAM to save: its guest address and its bytes in this process. */
export interface RamSource {
  guestAddress: number;
  bytes: Uint8Array;
  /** One byte per page, 1 for a page known to be zero without reading it (never touched). */
  knownZero?: Uint8Array;
}

/** One planned record: a run of data pages of one source. */
export interface InlineRecord {
  guestAddress: number;
  bytes: Uint8Array;
}

/** Plans the records for `sources` and the total length they take. */
export function planInlineMemory(sources: readonly RamSource[]): {
  records: InlineRecord[];
  length: number;
} {
  const records: InlineRecord[] = [];
  let length = 0;
  for (const source of sources) {
    for (const run of nonZeroRuns(source.bytes, source.knownZero)) {
      records.push({
        guestAddress: source.guestAddress + run.offset,
        bytes: source.bytes.subarray(run.offset, run.offset + run.length),
      });
      length += RECORD_HEADER_SIZE + run.length;
    }
  }
  return { records, length };
}

/** The header of one record. */
export function encodeRecordHeader(record: InlineRecord): Uint8Array {
  const header = new Uint8Array(RECORD_HEADER_SIZE);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, BigInt(record.guestAddress), true);
  view.setUint32(8, record.bytes.length / PAGE_SIZE, true);
  return header;
}

/**
 * Reads `length` bytes of records with `read` (which fills exactly the buffer it is
 * given) and hands each run of pages to `write(guestAddress, bytes)`. Every record is
 * checked against `ranges` before its pages are read.
 */
export async function readInlineMemory(
  length: number,
  ranges: readonly MemoryRangeRecord[],
  read: (buffer: Uint8Array) => Promise<void>,
  write: (guestAddress: number, bytes: Uint8Array) => void,
): Promise<void> {
  const header = new Uint8Array(RECORD_HEADER_SIZE);
  const view = new DataView(header.buffer);
  let consumed = 0;
  let nextAllowed = 0;
  let index = 0;
  while (consumed < length) {
    const where = `inline memory record ${index} at byte ${consumed}`;
    if (length - consumed < RECORD_HEADER_SIZE) {
      throw new StateFileError(`State file: ${where} is truncated`);
    }
    await read(header);
    consumed += RECORD_HEADER_SIZE;
    const address = view.getBigUint64(0, true);
    const pages = view.getUint32(8, true);
    if (view.getUint32(12, true) !== 0) {
      throw new StateFileError(`State file: ${where} has a non-zero reserved field`);
    }
    if (pages === 0 || address % BigInt(PAGE_SIZE) !== 0n || address > 2n ** 52n) {
      throw new StateFileError(
        `State file: ${where} has a bad address 0x${address.toString(16)} or page count ${pages}`,
      );
    }
    const start = Number(address);
    const bytes = pages * PAGE_SIZE;
    if (start < nextAllowed) {
      throw new StateFileError(`State file: ${where} overlaps or precedes the one before it`);
    }
    const range = ranges.find((r) => start >= r.guestAddress && start < r.guestAddress + r.size);
    if (!range || start + bytes > range.guestAddress + range.size) {
      throw new StateFileError(
        `State file: ${where} (0x${start.toString(16)}, ${pages} pages) is outside guest RAM`,
      );
    }
    if (bytes > length - consumed) throw new StateFileError(`State file: ${where} is truncated`);
    // Read in bounded pieces so a hostile page count never makes one huge allocation.
    for (let done = 0; done < bytes;) {
      const piece = new Uint8Array(Math.min(bytes - done, 1 << 20));
      await read(piece);
      write(start + done, piece);
      done += piece.length;
    }
    consumed += bytes;
    nextAllowed = start + bytes;
    index++;
  }
}
