/**
 * Writes and reads Denovisor state files (layout in state_format.ts and
 * docs/state-format.md). A state file is untrusted on the way in: the header, the
 * checksum and the document are all checked before anything is restored, and every
 * refusal names the part and the field.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { writeAtomically } from "./atomic_write.ts";
import {
  encodeRecordHeader,
  planInlineMemory,
  type RamSource,
  readInlineMemory,
} from "./inline_memory.ts";
import { writeAll } from "./memory_file.ts";
import { parseStateDocument, type StateDocument } from "./state_document.ts";
import {
  CHECKSUM_SIZE,
  decodeHeader,
  encodeHeader,
  FLAG_INLINE_MEMORY,
  HEADER_SIZE,
  STATE_FORMAT_VERSION,
  StateFileError,
  type StateHeader,
} from "./state_format.ts";

/** Where bytes of a state file go: a file or any stream. */
export type ByteSink = (bytes: Uint8Array) => Promise<void>;

/**
 * Encodes a state into `sink`. With `inline`, guest RAM follows the document (zero pages
 * left out) and `document.memory.storage` must be "inline"; without, the document
 * describes a companion memory file written separately. Returns the bytes written.
 */
export async function encodeState(
  sink: ByteSink,
  document: StateDocument,
  inline?: readonly RamSource[],
): Promise<number> {
  if ((inline !== undefined) !== (document.memory.storage === "inline")) {
    throw new StateFileError("encodeState: inline memory and memory.storage disagree");
  }
  const documentBytes = new TextEncoder().encode(JSON.stringify(document));
  const plan = inline ? planInlineMemory(inline) : { records: [], length: 0 };
  const header = encodeHeader({
    formatVersion: STATE_FORMAT_VERSION,
    flags: inline ? FLAG_INLINE_MEMORY : 0,
    documentLength: documentBytes.length,
    inlineMemoryLength: plan.length,
  });
  const hash = createHash("sha256");
  const put = async (bytes: Uint8Array) => {
    hash.update(bytes);
    await sink(bytes);
  };
  await put(header);
  await put(documentBytes);
  for (const record of plan.records) {
    await put(encodeRecordHeader(record));
    await put(record.bytes);
  }
  await sink(new Uint8Array(hash.digest()));
  return HEADER_SIZE + documentBytes.length + plan.length + CHECKSUM_SIZE;
}

/** Writes a state file atomically (temporary name, fsync, rename; mode 0600). */
export async function writeStateFile(
  path: string,
  document: StateDocument,
  inline?: readonly RamSource[],
): Promise<number> {
  let written = 0;
  await writeAtomically(path, async (file) => {
    written = await encodeState((bytes) => writeAll(file, bytes), document, inline);
  });
  return written;
}

/** A state file read and checked; inline RAM (if any) is read on demand. */
export interface StateFile {
  header: StateHeader;
  document: StateDocument;
  /**
   * Streams the inline RAM into `write(guestAddress, bytes)`, every record checked
   * against the document's ranges. Only for files with inline memory.
   */
  readInlineMemory(write: (guestAddress: number, bytes: Uint8Array) => void): Promise<void>;
  close(): void;
}

/**
 * Opens and checks a state file: a regular file, the header, the SHA-256 over the whole
 * file, then the document. Nothing is restored from a file that fails any check.
 */
export async function readStateFile(path: string): Promise<StateFile> {
  const info = await Deno.stat(path).catch((error) => {
    throw new StateFileError(`Cannot open state file ${path}: ${(error as Error).message}`);
  });
  if (!info.isFile) {
    throw new StateFileError(`State file ${path} is not a regular file`);
  }
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const headerBytes = new Uint8Array(Math.min(HEADER_SIZE, size));
    await readExactly(file, headerBytes);
    const header = decodeHeader(headerBytes, size);
    await verifyChecksum(file, size, path);
    await file.seek(HEADER_SIZE, Deno.SeekMode.Start);
    const document = await readDocument(file, header.documentLength);
    return {
      header,
      document,
      readInlineMemory: async (write) => {
        if (header.inlineMemoryLength === 0) {
          throw new StateFileError(`State file ${path} has no inline memory`);
        }
        await file.seek(HEADER_SIZE + header.documentLength, Deno.SeekMode.Start);
        await readInlineMemory(
          header.inlineMemoryLength,
          document.memory.ranges,
          (buffer) => readExactly(file, buffer),
          write,
        );
      },
      close: () => file.close(),
    };
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Reads a state from a stream (a pipe: `restore` from standard input) in one pass. The
 * checksum can only be checked at the end, so inline RAM is written to `write` first:
 * the caller must not run the guest before this resolves.
 */
export async function readStateStream(
  read: (buffer: Uint8Array) => Promise<void>,
  write: (guestAddress: number, bytes: Uint8Array) => void,
  onDocument: (document: StateDocument) => void = () => {},
): Promise<{ header: StateHeader; document: StateDocument }> {
  const hash = createHash("sha256");
  const hashed = async (buffer: Uint8Array) => {
    await read(buffer);
    hash.update(buffer);
  };
  const headerBytes = new Uint8Array(HEADER_SIZE);
  await hashed(headerBytes);
  const lengths = new DataView(headerBytes.buffer);
  // The stream's size is unknown: take it from the header and let decodeHeader check the rest.
  const claimed = HEADER_SIZE + CHECKSUM_SIZE + Number(lengths.getBigUint64(16, true)) +
    Number(lengths.getBigUint64(24, true));
  const header = decodeHeader(headerBytes, Number.isSafeInteger(claimed) ? claimed : -1);
  const documentBytes = new Uint8Array(header.documentLength);
  await hashed(documentBytes);
  const document = parseDocumentBytes(documentBytes);
  onDocument(document);
  if (header.inlineMemoryLength > 0) {
    await readInlineMemory(header.inlineMemoryLength, document.memory.ranges, hashed, write);
  }
  const trailer = new Uint8Array(CHECKSUM_SIZE);
  await read(trailer);
  if (!sameBytes(trailer, new Uint8Array(hash.digest()))) {
    throw new StateFileError("State stream checksum mismatch: the stream is corrupted");
  }
  return { header, document };
}

async function verifyChecksum(file: Deno.FsFile, size: number, path: string): Promise<void> {
  await file.seek(0, Deno.SeekMode.Start);
  const hash: Hash = createHash("sha256");
  const buffer = new Uint8Array(1 << 20);
  let remaining = size - CHECKSUM_SIZE;
  while (remaining > 0) {
    const piece = buffer.subarray(0, Math.min(buffer.length, remaining));
    await readExactly(file, piece);
    hash.update(piece);
    remaining -= piece.length;
  }
  const trailer = new Uint8Array(CHECKSUM_SIZE);
  await readExactly(file, trailer);
  if (!sameBytes(trailer, new Uint8Array(hash.digest()))) {
    throw new StateFileError(`State file ${path} checksum mismatch: the file is corrupted`);
  }
}

async function readDocument(file: Deno.FsFile, length: number): Promise<StateDocument> {
  const bytes = new Uint8Array(length);
  await readExactly(file, bytes);
  return parseDocumentBytes(bytes);
}

function parseDocumentBytes(bytes: Uint8Array): StateDocument {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new StateFileError(`State file document is not JSON: ${(error as Error).message}`);
  }
  return parseStateDocument(json);
}

/** Fills `buffer` from `file`, or fails on a premature end. */
export async function readExactly(file: Deno.FsFile, buffer: Uint8Array): Promise<void> {
  for (let done = 0; done < buffer.length;) {
    const count = await file.read(buffer.subarray(done));
    if (count === null) throw new StateFileError("State file ended early: it is truncated");
    done += count;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}
