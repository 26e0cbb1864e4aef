/**
 * Parsing of virtio-blk requests (virtio 1.2, 5.2.6): a 16-byte header in the
 * device-readable part, then data, then a status byte as the last device-writable byte.
 * The driver may split any of these across descriptors, so nothing assumes framing.
 *
 * @module
 */

import type { DescriptorChain } from "./queue_types.ts";

/** Request types (virtio 1.2, 5.2.6). */
export const VIRTIO_BLK_T = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** Request status values. */
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** virtio-blk sectors are 512 bytes whatever blk_size says. */
export const SECTOR_SIZE = 512;
/** struct virtio_blk_outhdr: type u32, reserved u32, sector u64. */
export const REQUEST_HEADER_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes: sector u64, num_sectors u32, flags u32. */
export const SEGMENT_SIZE = 16;
/** The only defined flag of a write-zeroes segment. */
export const WRITE_ZEROES_FLAG_UNMAP = 1;
/** Length of the GET_ID answer. */
export const BLOCK_ID_BYTES = 20;

/** Request types whose data the device writes into the guest. */
const DEVICE_WRITES = new Set<number>([VIRTIO_BLK_T.IN, VIRTIO_BLK_T.GET_ID]);
/** Request types whose data the device reads from the guest. */
const DEVICE_READS = new Set<number>([
  VIRTIO_BLK_T.OUT,
  VIRTIO_BLK_T.DISCARD,
  VIRTIO_BLK_T.WRITE_ZEROES,
]);

/**
 * One request, parsed in place: reused from request to request so the hot path does not
 * allocate beyond the occasional sub-view of a descriptor that mixes header and data.
 */
export class BlockRequest {
  type = 0;
  sector = 0n;
  /** The data buffers: guest memory the device reads (OUT...) or fills (IN, GET_ID). */
  readonly data: Uint8Array[] = [];
  dataLength = 0;
  /** The buffer holding the status byte (at `statusOffset`), if the chain has one. */
  statusBuffer: Uint8Array | undefined;
  statusOffset = 0;
  readonly #header = new Uint8Array(REQUEST_HEADER_SIZE);
  readonly #headerView = new DataView(this.#header.buffer);

  /** Parses `chain`; returns undefined when well formed, else what is wrong with it. */
  parse(chain: DescriptorChain): string | undefined {
    this.data.length = 0;
    this.dataLength = 0;
    this.statusBuffer = undefined;
    this.type = -1;
    this.sector = 0n;
    const writable = chain.writable;
    if (writable.length > 0) {
      const last = writable[writable.length - 1].bytes;
      this.statusBuffer = last;
      this.statusOffset = last.length - 1;
    }
    if (this.statusBuffer === undefined || this.statusBuffer.length === 0) {
      this.statusBuffer = undefined;
      return "the request has no writable status byte";
    }
    if (chain.readableLength < REQUEST_HEADER_SIZE) {
      return `the request header has ${chain.readableLength} bytes, not ${REQUEST_HEADER_SIZE}`;
    }
    const afterHeader = this.#readHeader(chain);
    if (DEVICE_READS.has(this.type)) {
      this.#collectReadable(chain, afterHeader);
    } else if (DEVICE_WRITES.has(this.type)) {
      this.#collectWritable(chain);
    }
    return undefined;
  }

  /** Sets the status byte (the chain must have parsed with a status buffer). */
  setStatus(status: number): void {
    if (this.statusBuffer) this.statusBuffer[this.statusOffset] = status;
  }

  /** Copies the header out of however many buffers hold it; returns [buffer, offset] after it. */
  #readHeader(chain: DescriptorChain): [number, number] {
    let filled = 0;
    let index = 0;
    let offset = 0;
    while (filled < REQUEST_HEADER_SIZE) {
      const bytes = chain.readable[index].bytes;
      const take = Math.min(bytes.length, REQUEST_HEADER_SIZE - filled);
      this.#header.set(bytes.subarray(0, take), filled);
      filled += take;
      if (take === bytes.length) {
        index++;
        offset = 0;
      } else {
        offset = take;
      }
    }
    this.type = this.#headerView.getUint32(0, true);
    this.sector = this.#headerView.getBigUint64(8, true);
    return [index, offset];
  }

  #collectReadable(chain: DescriptorChain, [index, offset]: [number, number]): void {
    for (let i = index; i < chain.readable.length; i++) {
      const bytes = chain.readable[i].bytes;
      this.#add(i === index && offset > 0 ? bytes.subarray(offset) : bytes);
    }
  }

  #collectWritable(chain: DescriptorChain): void {
    const last = chain.writable.length - 1;
    for (let i = 0; i < last; i++) this.#add(chain.writable[i].bytes);
    const final = chain.writable[last].bytes;
    if (final.length > 1) this.#add(final.subarray(0, final.length - 1));
  }

  #add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.data.push(bytes);
    this.dataLength += bytes.length;
  }
}

/** A discard or write-zeroes segment. */
export interface BlockSegment {
  sector: bigint;
  sectors: number;
  flags: number;
}

/**
 * Reads the segments of a discard or write-zeroes request from its data; undefined when the
 * data is not a whole number of segments.
 */
export function readSegments(
  data: readonly Uint8Array[],
  length: number,
): BlockSegment[] | undefined {
  if (length === 0 || length % SEGMENT_SIZE !== 0) return undefined;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const piece of data) {
    bytes.set(piece, at);
    at += piece.length;
  }
  const view = new DataView(bytes.buffer);
  const segments: BlockSegment[] = [];
  for (let offset = 0; offset < length; offset += SEGMENT_SIZE) {
    segments.push({
      sector: view.getBigUint64(offset, true),
      sectors: view.getUint32(offset + 8, true),
      flags: view.getUint32(offset + 12, true),
    });
  }
  return segments;
}
