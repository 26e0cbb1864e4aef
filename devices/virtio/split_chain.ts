/**
 * Walking one descriptor chain of a split virtqueue (virtio 1.2, section 2.7.5): every
 * index, length, address, direction and indirect table the driver wrote is checked before
 * a device sees a single buffer. The guest may change the table while we walk it, so each
 * field is read exactly once and only the values read are checked and used.
 *
 * @module
 */

import { type GuestMemory, GuestMemoryError } from "../../core/guest_memory.ts";
import { type DescriptorChain, type GuestBuffer, VirtQueueError } from "./queue_types.ts";
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
  // This runs once per request: nothing here allocates beyond the chain itself, and the
  // error texts are only built on failure.
  // Made on the first buffer of each side: most chains have buffers on one side only.
  let readable: GuestBuffer[] | undefined;
  let writable: GuestBuffer[] | undefined;
  let readableLength = 0;
  let writableLength = 0;

  let table = descTable;
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
    const offset = index * DESC_SIZE;
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
      const bytes = guestSlice(memory, address, high, length);
      if (!bytes) {
        failChain(
          head,
          `has an indirect table (${tableName(indirectFrom)} entry ${index}) ${
            outsideRam(high, low, length)
          }`,
        );
      }
      table = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      tableSize = length / DESC_SIZE;
      indirectFrom = index;
      index = 0;
      visited = 0;
      continue;
    }

    if (length === 0) {
      failChain(head, `has a zero-length buffer in ${tableName(indirectFrom)} entry ${index}`);
    }
    const bytes = guestSlice(memory, address, high, length);
    if (!bytes) {
      failChain(
        head,
        `has a buffer in ${tableName(indirectFrom)} entry ${index} ${
          outsideRam(high, low, length)
        }`,
      );
    }
    const buffer: GuestBuffer = { address, bytes };
    if (flags & VIRTQ_DESC_F_WRITE) {
      (writable ??= []).push(buffer);
      writableLength += length;
    } else {
      if (writable !== undefined) {
        failChain(
          head,
          `has a device-readable buffer after a device-writable one in ${
            tableName(indirectFrom)
          } entry ${index}`,
        );
      }
      (readable ??= []).push(buffer);
      readableLength += length;
    }
    if (readableLength + writableLength > limits.maxChainBytes) {
      failChain(head, `is longer than ${limits.maxChainBytes} bytes in total`);
    }
    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    index = next;
  }
  return {
    head,
    readable: readable ?? NO_BUFFERS,
    writable: writable ?? NO_BUFFERS,
    readableLength,
    writableLength,
  };
}

/** The table being walked, for errors: the main one or the indirect one of its entry `from`. */
function tableName(from: number): string {
  return from < 0 ? "descriptor table" : `indirect table of descriptor table entry ${from}`;
}

/** Throws the error of a chain the device must return unused. */
function failChain(head: number, reason: string): never {
  throw new MalformedChainError(`Descriptor chain ${head} ${reason}`, head);
}

/** The live view of `[address, address + length)`, or undefined when it is not all in one RAM region. */
function guestSlice(
  memory: GuestMemory,
  address: number,
  high: number,
  length: number,
): Uint8Array | undefined {
  if (high >= 0x20_0000) return undefined; // at or above 2^53: never RAM, not exact as a number
  try {
    return memory.slice(address, length);
  } catch (error) {
    if (error instanceof GuestMemoryError) return undefined;
    throw error;
  }
}

function outsideRam(high: number, low: number, length: number): string {
  const hex = high === 0 ? low.toString(16) : high.toString(16) + low.toString(16).padStart(8, "0");
  return `of ${length} bytes at 0x${hex} that is not inside one guest RAM region`;
}
