/**
 * The live-migration wire protocol, shaped like Cloud Hypervisor's: every message is a
 * 16-byte header and a payload.
 *
 * ```
 * 0   2   command (u16 LE)
 * 2   6   reserved, zero
 * 8   8   payload length (u64 LE)
 * 16  ..  payload
 * ```
 *
 * Commands (source -> destination unless noted):
 * - START (1): UTF-8 JSON `StartRequest` (oldest and newest protocol version, domain, VMM
 *   config, RAM ranges, disks);
 * - STATE (3): UTF-8 JSON, the machine's `StateDocument` (vmm/snapshot/state_document.ts);
 * - MEMORY (4): a range table and the pages it announces (`encodeMemory`); zero runs carry no data;
 * - COMPLETE (5): empty, the source is paused and everything was sent;
 * - ABANDON (6): UTF-8 JSON `{ reason }`, either side gives up;
 * - DIRTY_ROUND (7): u32 iteration, u8 throttle percent (auto-converge, 0-99), u8[3]
 *   reserved, u64 dirty bytes of that round (progress);
 * - SYNC (8, version 2): empty; the destination answers ACK `{synced: true}` once it has
 *   taken in every frame before it; sent only when START's ACK named version 2 or later. The source sends it before it pauses the guest, so that pages still
 *   queued in the socket buffers of the relays (megabytes on a fast link) drain while the
 *   guest runs, not during the downtime;
 * - ACK (0x80) and ERROR (0x81), destination -> source: JSON answers. Each ACK says what it
 *   answers: `{accepted, protocolVersion}` START, `{synced}` SYNC, `{running}` COMPLETE.
 *
 * The peer is untrusted: the header is checked (known command, reserved bytes zero, length
 * within that command's bound) before a byte of payload is read, and every payload is
 * checked by its decoder (`decodeMemory` keeps every page inside the declared RAM).
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** The newest protocol version this build speaks. */
export const PROTOCOL_VERSION = 2;
/**
 * The oldest version this build still speaks, as a source and as a destination. A source
 * declares it as START's `protocolVersion` (what a version 1 destination checks) and its
 * newest as `maxProtocolVersion`; the destination answers START's ACK with the version the
 * migration uses (`negotiatedVersion`). A version 1 destination's ACK names none: 1.
 */
export const MIN_PROTOCOL_VERSION = 1;
/** The versions this build accepts as a source's `protocolVersion`. */
export const ACCEPTED_VERSIONS: readonly number[] = [1, 2];
/** SYNC exists from this version on: a source sends it only when both sides speak it. */
export const SYNC_VERSION = 2;

/**
 * The version a migration uses, as the destination decides it from START: the newest
 * both sides speak (a START without `maxProtocolVersion` speaks only its `protocolVersion`).
 */
export function negotiatedVersion(
  start: { protocolVersion: number; maxProtocolVersion?: number },
): number {
  return Math.min(PROTOCOL_VERSION, start.maxProtocolVersion ?? start.protocolVersion);
}

/** Guest pages travel at this granularity. */
export const MIGRATION_PAGE_SIZE = 4096;
/** Size of a frame header. */
export const FRAME_HEADER_SIZE = 16;

/** Command numbers. */
export const Command = {
  START: 1,
  STATE: 3,
  MEMORY: 4,
  COMPLETE: 5,
  ABANDON: 6,
  DIRTY_ROUND: 7,
  SYNC: 8,
  ACK: 0x80,
  ERROR: 0x81,
} as const;
export type CommandNumber = typeof Command[keyof typeof Command];

/** At most this many entries in one MEMORY frame's range table. */
export const MAX_MEMORY_ENTRIES = 4096;
/** At most this many page bytes in one MEMORY frame (a sender sends several frames). */
export const MAX_MEMORY_DATA = 16 * 1024 * 1024;
const MEMORY_TABLE_HEADER = 8;
const MEMORY_ENTRY_SIZE = 16;
/** Entry flag: the pages are zero, no data follows for them. */
export const MEMORY_FLAG_ZERO = 1;

/** The largest payload accepted for each command. */
export const MAX_PAYLOAD: Readonly<Record<CommandNumber, number>> = {
  [Command.START]: 4 * 1024 * 1024,
  [Command.STATE]: 64 * 1024 * 1024,
  [Command.MEMORY]: MEMORY_TABLE_HEADER + MEMORY_ENTRY_SIZE * MAX_MEMORY_ENTRIES + MAX_MEMORY_DATA,
  [Command.COMPLETE]: 0,
  [Command.ABANDON]: 4096,
  [Command.DIRTY_ROUND]: 16,
  [Command.SYNC]: 0,
  [Command.ACK]: 4096,
  [Command.ERROR]: 4096,
};

/** A peer sent something this protocol does not allow; the migration stops. */
export class MigrationProtocolError extends DenovisorError {
  constructor(message: string) {
    super("invalid", `Migration stream refused: ${message}`);
  }
}

/** A decoded frame header. */
export interface FrameHeader {
  command: CommandNumber;
  length: number;
}

/** Whether `value` is a command this build knows. */
export function isCommand(value: number): value is CommandNumber {
  return Object.values(Command).includes(value as CommandNumber);
}

/** Encodes a frame header. */
export function encodeHeader(command: CommandNumber, length: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, command, true);
  view.setBigUint64(8, BigInt(length), true);
  return bytes;
}

/**
 * Decodes and checks a header from an untrusted peer: a known command, zero reserved
 * bytes and a length within the command's bound, so no hostile length is ever allocated.
 */
export function decodeHeader(bytes: Uint8Array): FrameHeader {
  if (bytes.length !== FRAME_HEADER_SIZE) {
    throw new MigrationProtocolError(`a frame header is ${FRAME_HEADER_SIZE} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const command = view.getUint16(0, true);
  if (!isCommand(command)) {
    throw new MigrationProtocolError(`unknown command ${command} (is the peer a newer Denovisor?)`);
  }
  for (let i = 2; i < 8; i++) {
    if (bytes[i] !== 0) throw new MigrationProtocolError("reserved header bytes are not zero");
  }
  const length = view.getBigUint64(8, true);
  if (length > BigInt(MAX_PAYLOAD[command])) {
    throw new MigrationProtocolError(
      `command ${command} announces ${length} bytes, at most ${MAX_PAYLOAD[command]} are allowed`,
    );
  }
  return { command, length: Number(length) };
}

/** Encodes a JSON payload. */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Decodes an untrusted JSON payload (its size was bounded by the header). */
export function decodeJson(payload: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new MigrationProtocolError(`the ${what} payload is not UTF-8 JSON`);
  }
}

/** A range of guest RAM, as START declares it. */
export interface RamExtent {
  guestAddress: number;
  size: number;
}

/** One run of pages in a MEMORY frame: zero pages carry no data. */
export interface PageBlock {
  guestAddress: number;
  pageCount: number;
  /** The pages, `pageCount * MIGRATION_PAGE_SIZE` bytes; absent for a zero run. */
  data?: Uint8Array;
}

/** The payload size of a MEMORY frame for `blocks`. */
export function memoryPayloadSize(blocks: readonly PageBlock[]): number {
  return MEMORY_TABLE_HEADER + blocks.length * MEMORY_ENTRY_SIZE +
    blocks.reduce((sum, b) => sum + (b.data ? b.data.length : 0), 0);
}

/** Encodes a MEMORY payload (table then data), as one buffer list for writev-like sends. */
export function encodeMemory(blocks: readonly PageBlock[]): Uint8Array[] {
  if (blocks.length === 0 || blocks.length > MAX_MEMORY_ENTRIES) {
    throw new RangeError(`a MEMORY frame carries 1 to ${MAX_MEMORY_ENTRIES} blocks`);
  }
  const table = new Uint8Array(MEMORY_TABLE_HEADER + blocks.length * MEMORY_ENTRY_SIZE);
  const view = new DataView(table.buffer);
  view.setUint32(0, blocks.length, true);
  const parts: Uint8Array[] = [table];
  blocks.forEach((block, index) => {
    const at = MEMORY_TABLE_HEADER + index * MEMORY_ENTRY_SIZE;
    view.setBigUint64(at, BigInt(block.guestAddress), true);
    view.setUint32(at + 8, block.pageCount, true);
    view.setUint32(at + 12, block.data ? 0 : MEMORY_FLAG_ZERO, true);
    if (block.data) {
      if (block.data.length !== block.pageCount * MIGRATION_PAGE_SIZE) {
        throw new RangeError("a block's data must be exactly its pages");
      }
      parts.push(block.data);
    }
  });
  return parts;
}

/**
 * Decodes an untrusted MEMORY payload. Every block must be page aligned, lie inside one
 * of `ram` (the ranges START declared and the destination accepted), and the data must
 * be exactly the non-zero blocks' pages. The returned data are views into `payload`.
 */
export function decodeMemory(payload: Uint8Array, ram: readonly RamExtent[]): PageBlock[] {
  if (payload.length < MEMORY_TABLE_HEADER) {
    throw new MigrationProtocolError("a MEMORY frame is shorter than its table header");
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = view.getUint32(0, true);
  if (count < 1 || count > MAX_MEMORY_ENTRIES) {
    throw new MigrationProtocolError(`a MEMORY frame announces ${count} blocks`);
  }
  if (view.getUint32(4, true) !== 0) {
    throw new MigrationProtocolError("reserved MEMORY table bytes are not zero");
  }
  const tableEnd = MEMORY_TABLE_HEADER + count * MEMORY_ENTRY_SIZE;
  if (payload.length < tableEnd) {
    throw new MigrationProtocolError(`a MEMORY frame is shorter than its ${count}-block table`);
  }
  const blocks: PageBlock[] = [];
  let dataAt = tableEnd;
  for (let index = 0; index < count; index++) {
    const at = MEMORY_TABLE_HEADER + index * MEMORY_ENTRY_SIZE;
    const address = view.getBigUint64(at, true);
    const pageCount = view.getUint32(at + 8, true);
    const flags = view.getUint32(at + 12, true);
    if ((flags & ~MEMORY_FLAG_ZERO) !== 0) {
      throw new MigrationProtocolError(`block ${index} has unknown flags 0x${flags.toString(16)}`);
    }
    if (address > BigInt(Number.MAX_SAFE_INTEGER) || pageCount === 0) {
      throw new MigrationProtocolError(`block ${index} is empty or beyond any address`);
    }
    const guestAddress = Number(address);
    const size = pageCount * MIGRATION_PAGE_SIZE;
    if (guestAddress % MIGRATION_PAGE_SIZE !== 0) {
      throw new MigrationProtocolError(`block ${index} is not page aligned`);
    }
    const inside = ram.some((r) =>
      guestAddress >= r.guestAddress && guestAddress + size <= r.guestAddress + r.size
    );
    if (!inside) {
      throw new MigrationProtocolError(
        `block ${index} (${pageCount} pages at 0x${
          guestAddress.toString(16)
        }) is outside the declared RAM`,
      );
    }
    if ((flags & MEMORY_FLAG_ZERO) !== 0) {
      blocks.push({ guestAddress, pageCount });
      continue;
    }
    if (dataAt + size > payload.length) {
      throw new MigrationProtocolError(`block ${index}'s pages run past the frame`);
    }
    blocks.push({ guestAddress, pageCount, data: payload.subarray(dataAt, dataAt + size) });
    dataAt += size;
  }
  if (dataAt !== payload.length) {
    throw new MigrationProtocolError(
      `${payload.length - dataAt} bytes after the last block's pages`,
    );
  }
  return blocks;
}

/** Progress marker between pre-copy rounds. */
export interface DirtyRound {
  iteration: number;
  dirtyBytes: number;
  /** How hard the source throttles its vCPUs from this round on (auto-converge), 0-99. */
  throttlePercent?: number;
}

export function encodeDirtyRound(round: DirtyRound): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, round.iteration, true);
  view.setUint8(4, Math.max(0, Math.min(99, Math.round(round.throttlePercent ?? 0))));
  view.setBigUint64(8, BigInt(round.dirtyBytes), true);
  return bytes;
}

export function decodeDirtyRound(payload: Uint8Array): DirtyRound {
  if (payload.length !== 16) throw new MigrationProtocolError("a DIRTY_ROUND frame is 16 bytes");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (view.getUint8(5) !== 0 || view.getUint16(6, true) !== 0) {
    throw new MigrationProtocolError("reserved DIRTY_ROUND bytes are not zero");
  }
  const throttlePercent = view.getUint8(4);
  if (throttlePercent > 99) {
    throw new MigrationProtocolError(
      `a DIRTY_ROUND throttle of ${throttlePercent} % is impossible`,
    );
  }
  const dirtyBytes = view.getBigUint64(8, true);
  if (dirtyBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MigrationProtocolError("a DIRTY_ROUND announces an impossible byte count");
  }
  return { iteration: view.getUint32(0, true), dirtyBytes: Number(dirtyBytes), throttlePercent };
}
