/**
 * The layout of a Denovisor state file: the constants and the fixed header, shared by the
 * writer and the reader. The full description, with a table of sections, is
 * docs/state-format.md.
 *
 * ```
 * offset      size  field
 * 0           8     magic "DNVSTATE"
 * 8           4     format version (u32 LE)
 * 12          4     flags (u32 LE): bit 0 = guest RAM is inline, after the document
 * 16          8     document length D (u64 LE)
 * 24          8     inline memory length M (u64 LE); 0 when RAM is in a memory file
 * 32          D     the document: UTF-8 JSON (`StateDocument`)
 * 32+D        M     inline memory records (see inline_memory.ts)
 * 32+D+M      32    SHA-256 of every byte before it
 * ```
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** The first eight bytes of every state file. */
export const STATE_MAGIC = new TextEncoder().encode("DNVSTATE");
/** The format version this build writes. */
export const STATE_FORMAT_VERSION = 1;
/** The format versions this build reads (older ones are kept, with a sample, in tests). */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1];
/** Size of the fixed header. */
export const HEADER_SIZE = 32;
/** Size of the SHA-256 trailer. */
export const CHECKSUM_SIZE = 32;
/** Flag: guest RAM follows the document in the same file. */
export const FLAG_INLINE_MEMORY = 1;
/** Every flag this build understands; any other bit set is refused. */
export const KNOWN_FLAGS = FLAG_INLINE_MEMORY;
/**
 * The largest document accepted. A 254-vCPU machine with XSAVE areas is a few MiB; a
 * bound keeps a hostile length from making the reader allocate gigabytes.
 */
export const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;
/** Guest pages are saved and holed at this granularity. */
export const PAGE_SIZE = 4096;

/** A state file that cannot be used: the message names the part and the field. */
export class StateFileError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The fixed header, decoded. */
export interface StateHeader {
  formatVersion: number;
  flags: number;
  documentLength: number;
  inlineMemoryLength: number;
}

/** Encodes the fixed header. */
export function encodeHeader(header: StateHeader): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE);
  bytes.set(STATE_MAGIC, 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, header.formatVersion, true);
  view.setUint32(12, header.flags, true);
  view.setBigUint64(16, BigInt(header.documentLength), true);
  view.setBigUint64(24, BigInt(header.inlineMemoryLength), true);
  return bytes;
}

/**
 * Decodes and checks the fixed header of a file of `fileSize` bytes: the magic, a
 * readable version, known flags, and lengths that add up to the file's size exactly.
 */
export function decodeHeader(bytes: Uint8Array, fileSize: number): StateHeader {
  if (fileSize < HEADER_SIZE + CHECKSUM_SIZE || bytes.length < HEADER_SIZE) {
    throw new StateFileError(
      `State file is truncated: ${fileSize} bytes is less than a header and a checksum`,
    );
  }
  if (!STATE_MAGIC.every((byte, index) => bytes[index] === byte)) {
    throw new StateFileError("Not a Denovisor state file: the magic 'DNVSTATE' is missing");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const formatVersion = view.getUint32(8, true);
  if (!READABLE_FORMAT_VERSIONS.includes(formatVersion)) {
    throw new StateFileError(
      `State file format version ${formatVersion} is not supported; this build reads ` +
        `version ${READABLE_FORMAT_VERSIONS.join(", ")}`,
    );
  }
  const flags = view.getUint32(12, true);
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new StateFileError(`State file header has unknown flags 0x${flags.toString(16)}`);
  }
  const documentLength = view.getBigUint64(16, true);
  const inlineMemoryLength = view.getBigUint64(24, true);
  if (documentLength === 0n || documentLength > BigInt(MAX_DOCUMENT_BYTES)) {
    throw new StateFileError(
      `State file header: document length ${documentLength} is not in 1..${MAX_DOCUMENT_BYTES}`,
    );
  }
  const expected = BigInt(HEADER_SIZE + CHECKSUM_SIZE) + documentLength + inlineMemoryLength;
  if (expected !== BigInt(fileSize)) {
    throw new StateFileError(
      `State file is ${fileSize} bytes but its header describes ${expected}: ` +
        `truncated or corrupted`,
    );
  }
  const inline = (flags & FLAG_INLINE_MEMORY) !== 0;
  if (inline !== (inlineMemoryLength > 0n)) {
    throw new StateFileError(
      "State file header: the inline-memory flag and the inline memory length disagree",
    );
  }
  return {
    formatVersion,
    flags,
    documentLength: Number(documentLength),
    inlineMemoryLength: Number(inlineMemoryLength),
  };
}
