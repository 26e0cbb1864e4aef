/**
 * Walking one descriptor chain of a split virtqueue (virtio 1.2, section 2.7.5): every
 * index, length, address, direction and indirect table the driver wrote is checked before
 * a device sees a single buffer. The guest may change the table while we walk it, so each
 * field is read exactly once and only the values read are checked and used.
 *
 * @module
 */

import type { GuestMemory } from "../../core/guest_memory.ts";
import {
  ChainBuffers,
  type DescriptorChain,
  type GuestBuffer,
  VirtQueueError,
} from "./queue_types.ts";
import {
  DESC_FLAGS,
  DESC_LEN,
  DESC_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from "./split_ring.ts";

/**
 * A chain the driver made available but that cannot be used. It has been consumed from
 * the available ring. When `head` is defined the device should return it with
 * `push(head, 0)` and carry on (failing only that request); when it is undefined there is
 * no chain to return (the ring entry itself was bad) and the device should fail itself.
 */
export class MalformedChainError extends VirtQueueError {
  constructor(message: string, readonly head: number | undefined) {
    super(message);
    this.name = "MalformedChainError";
  }
}

/** How far a chain may go; the defaults follow the spec's limits. */
export interface ChainLimits {
  /** Whether VIRTIO_F_RING_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
  /** Most bytes all buffers of one chain may add up to. */
  readonly maxChainBytes: number;
}

// `next` is 16 bits wide, so entries past 65536 of an indirect table can never be reached:
// a longer table is a bogus length, not a bigger request.
const MAX_INDIRECT_ENTRIES = 65536;

/** The side of a chain without buffers (shared, frozen: chains' buffer lists are read-only). */
const NO_BUFFERS: readonly GuestBuffer[] = Object.freeze([]);

/** Reused by `readChain` (one chain at a time: the walk is synchronous). */
const scratch = new ChainBuffers();

/**
 * Reads and validates the chain starting at descriptor `head` of `descTable` (a view of
 * the `size`-entry descriptor table). Throws `MalformedChainError` naming the head.
 */
export function readChain(
  memory: GuestMemory,
  descTable: DataView,
  size: number,
  head: number,
  limits: ChainLimits,
): DescriptorChain {
  walkChain(memory, descTable, size, head, limits, scratch);
  // Made on the first buffer of each side: most chains have buffers on one side only.
  let readable: GuestBuffer[] | undefined;
  let writable: GuestBuffer[] | undefined;
  for (let i = 0; i < scratch.count; i++) {
    const address = scratch.addresses[i];
    // slice() tells the write tracker, as every view handed out may be written.
    const buffer: GuestBuffer = { address, bytes: memory.slice(address, scratch.lengths[i]) };
    if (i < scratch.readableCount) (readable ??= []).push(buffer);
    else (writable ??= []).push(buffer);
  }
  return {
    head,
    readable: readable ?? NO_BUFFERS,
    writable: writable ?? NO_BUFFERS,
    readableLength: scratch.readableLength,
    writableLength: scratch.writableLength,
  };
}

/**
 * Validates the chain starting at descriptor `head` of `descTable` (a view of the
 * `size`-entry descriptor table) into `out`, allocating nothing: each buffer is recorded
 * as its RAM region's host bytes and an offset. Throws `MalformedChainError` naming the
 * head; `out` is then meaningless. The write tracker is not told: the caller tells it of
 * the writable buffers (`GuestMemory.noteWrite`).
 */
export function walkChain(
  memory: GuestMemory,
  descTable: DataView,
  size: number,
  head: number,
  limits: ChainLimits,
  out: ChainBuffers,
): void {
  // This runs once per request: nothing here allocates, and the error texts are only
  // built on failure.
  out.reset(head);
  const regions = memory.regions;

  let table = descTable;
  // Where the table being walked starts in `table` (an indirect one is read in place).
  let tableBase = 0;
  let tableSize = size;
  // The main-table entry that named the indirect table being walked, -1 in the main table.
  let indirectFrom = -1;
  let index = head;
  // Descriptors visited in the current table: a chain that visits more than the table
  // holds has come back to one it already visited (a loop).
  let visited = 0;

  for (;;) {
    if (index >= tableSize) {
      failChain(
        head,
        `links to descriptor ${index} but the ${tableName(indirectFrom)} has ${tableSize} entries`,
      );
    }
    if (++visited > tableSize) {
      failChain(
        head,
        `is longer than the ${tableSize} entries of the ${tableName(indirectFrom)}: it loops`,
      );
    }
    const offset = tableBase + index * DESC_SIZE;
    const low = table.getUint32(offset, true);
    const high = table.getUint32(offset + 4, true);
    const length = table.getUint32(offset + DESC_LEN, true);
    // flags and next (DESC_NEXT = DESC_FLAGS + 2) in one read, each field still read once.
    const flagsNext = table.getUint32(offset + DESC_FLAGS, true);
    const flags = flagsNext & 0xffff;
    const next = flagsNext >>> 16;
    // Exact below 2^53; anything above is far outside guest RAM and GuestMemory refuses it.
    const address = high * 0x1_0000_0000 + low;

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!limits.indirect) {
        failChain(
          head,
          `uses an indirect table (${
            tableName(indirectFrom)
          } entry ${index}) but VIRTIO_F_RING_INDIRECT_DESC was not negotiated`,
        );
      }
      if (indirectFrom >= 0) {
        failChain(
          head,
          `nests an indirect table inside an indirect table (${
            tableName(indirectFrom)
          } entry ${index})`,
        );
      }
      if (flags & VIRTQ_DESC_F_NEXT) {
        failChain(
          head,
          `has both INDIRECT and NEXT set in ${
            tableName(indirectFrom)
          } entry ${index}: an indirect table must end the chain`,
        );
      }
      if (length === 0 || length % DESC_SIZE !== 0) {
        failChain(
          head,
          `has an indirect table of ${length} bytes (${
            tableName(indirectFrom)
          } entry ${index}): not a non-zero multiple of 16`,
        );
      }
      if (length / DESC_SIZE > MAX_INDIRECT_ENTRIES) {
        failChain(head, `has an indirect table of ${length / DESC_SIZE} entries, more than 65536`);
      }
      const region = guestRegion(memory, address, high, length);
      if (region < 0) {
        failChain(
          head,
          `has an indirect table (${tableName(indirectFrom)} entry ${index}) ${
            outsideRam(high, low, length)
          }`,
        );
      }
      table = memory.regionView(region);
      tableBase = address - regions[region].start;
      tableSize = length / DESC_SIZE;
      indirectFrom = index;
      index = 0;
      visited = 0;
      continue;
    }

    if (length === 0) {
      failChain(head, `has a zero-length buffer in ${tableName(indirectFrom)} entry ${index}`);
    }
    const region = guestRegion(memory, address, high, length);
    if (region < 0) {
      failChain(
        head,
        `has a buffer in ${tableName(indirectFrom)} entry ${index} ${
          outsideRam(high, low, length)
        }`,
      );
    }
    const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
    if (!writable && out.count > out.readableCount) {
      failChain(
        head,
        `has a device-readable buffer after a device-writable one in ${
          tableName(indirectFrom)
        } entry ${index}`,
      );
    }
    const { start, bytes } = regions[region];
    out.add(bytes, address - start, length, address, writable);
    if (out.readableLength + out.writableLength > limits.maxChainBytes) {
      failChain(head, `is longer than ${limits.maxChainBytes} bytes in total`);
    }
    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    index = next;
  }
}

/** The table being walked, for errors: the main one or the indirect one of its entry `from`. */
function tableName(from: number): string {
  return from < 0 ? "descriptor table" : `indirect table of descriptor table entry ${from}`;
}

/** Throws the error of a chain the device must return unused. */
function failChain(head: number, reason: string): never {
  throw new MalformedChainError(`Descriptor chain ${head} ${reason}`, head);
}

/** The region index of `[address, address + length)`, or -1 when it is not all in one RAM region. */
function guestRegion(memory: GuestMemory, address: number, high: number, length: number): number {
  if (high >= 0x20_0000) return -1; // at or above 2^53: never RAM, not exact as a number
  return memory.regionOf(address, length);
}

function outsideRam(high: number, low: number, length: number): string {
  const hex = high === 0 ? low.toString(16) : high.toString(16) + low.toString(16).padStart(8, "0");
  return `of ${length} bytes at 0x${hex} that is not inside one guest RAM region`;
}
