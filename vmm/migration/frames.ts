/**
 * Frames over a byte stream: `FrameReader` pulls whole frames out of any async iterable
 * of chunks (a TLS socket, a unix socket, a test's array), checking each header before a
 * byte of its payload is buffered; `FrameWriter` sends frames through a write function
 * that resolves when the transport has taken the bytes (so a slow link slows the sender
 * instead of filling memory).
 *
 * @module
 */

import {
  type CommandNumber,
  decodeHeader,
  encodeHeader,
  FRAME_HEADER_SIZE,
  MAX_PAYLOAD,
  MigrationProtocolError,
} from "./protocol.ts";

/** One received frame. */
export interface Frame {
  command: CommandNumber;
  payload: Uint8Array;
}

/** Reads frames from an untrusted stream. */
export class FrameReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /**
   * The next frame, or null when the peer closed cleanly between frames. A stream that
   * ends inside a frame, or a header the protocol does not allow, throws
   * `MigrationProtocolError`.
   */
  async next(): Promise<Frame | null> {
    if (!(await this.#fill(FRAME_HEADER_SIZE))) {
      if (this.#buffered === 0) return null;
      throw new MigrationProtocolError("the stream ended inside a frame header");
    }
    const header = decodeHeader(this.#take(FRAME_HEADER_SIZE));
    if (!(await this.#fill(header.length))) {
      throw new MigrationProtocolError(
        `the stream ended inside a ${header.length}-byte payload (link cut?)`,
      );
    }
    return { command: header.command, payload: this.#take(header.length) };
  }

  /** Stops reading (the source's `return` lets a socket iterator release its listeners). */
  async close(): Promise<void> {
    this.#ended = true;
    await this.#source.return?.();
  }

  async #fill(wanted: number): Promise<boolean> {
    while (this.#buffered < wanted) {
      if (this.#ended) return false;
      const { done, value } = await this.#source.next();
      if (done) {
        this.#ended = true;
        return false;
      }
      if (value.length === 0) continue;
      this.#chunks.push(value);
      this.#buffered += value.length;
    }
    return true;
  }

  #take(length: number): Uint8Array {
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const chunk = this.#chunks[0];
      const used = Math.min(chunk.length, length - at);
      out.set(chunk.subarray(0, used), at);
      at += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    this.#buffered -= length;
    return out;
  }
}

/** Writes bytes to the transport; resolves when it accepted them (backpressure). */
export type WriteBytes = (bytes: Uint8Array) => Promise<void>;

/** Sends frames. */
export class FrameWriter {
  readonly #write: WriteBytes;
  #sent = 0;

  constructor(write: WriteBytes) {
    this.#write = write;
  }

  /** Bytes written so far, headers included (for bandwidth measures). */
  get bytesSent(): number {
    return this.#sent;
  }

  /** Sends one frame whose payload is `parts` laid end to end. */
  async send(command: CommandNumber, ...parts: Uint8Array[]): Promise<void> {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    if (length > MAX_PAYLOAD[command]) {
      throw new RangeError(`a command ${command} payload of ${length} bytes is over its bound`);
    }
    await this.#write(encodeHeader(command, length));
    for (const part of parts) if (part.length > 0) await this.#write(part);
    this.#sent += FRAME_HEADER_SIZE + length;
  }
}
