/**
 * virtio-console (virtio 1.2, 5.3) with one port and no MULTIPORT: receiveq0 carries host
 * input to the guest, transmitq0 guest output to a `ConsoleOutput` (the same backends as
 * the serial port).
 *
 * @module
 */

import type { ConsoleOutput } from "../console/console.ts";
import type { VirtQueue } from "./queue_types.ts";
import { type ActivateContext, VIRTIO_F, VIRTIO_ID, type VirtioDevice } from "./virtio_device.ts";
import { encodeBase64, StateReader, type VersionedState } from "../../common/persist.ts";
import { readCounters } from "../state_fields.ts";

/**
 * virtio-console's own state: host input the guest has not taken yet, and the counters.
 * Output needs nothing: transmit chains are written out as they are popped.
 */
export interface VirtioConsoleState extends VersionedState {
  readonly version: 1;
  /** Pending host input, oldest first, base64. */
  readonly input: string;
  readonly stats: VirtioConsoleStats;
}

/** Queue indexes of the single port. */
export const CONSOLE_RECEIVE_QUEUE = 0;
export const CONSOLE_TRANSMIT_QUEUE = 1;
/** struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
export const CONSOLE_CONFIG_SIZE = 12;
/** Default bound of host input waiting for receive buffers. */
export const CONSOLE_DEFAULT_INPUT_BUFFER = 64 * 1024;

/** Options of a virtio-console device. */
export interface VirtioConsoleOptions {
  output: ConsoleOutput;
  /** Queue size (a power of two); 256 by default. */
  queueSize?: number;
  /** Input bytes kept while the guest has no receive buffers; older input is kept, newer dropped. */
  inputBufferBytes?: number;
}

/** Counters for stats and tests. */
export interface VirtioConsoleStats {
  bytesTransmitted: number;
  bytesReceived: number;
  /** Input dropped because the backlog was full. */
  bytesDropped: number;
}

/** The virtio console device. */
export class VirtioConsole implements VirtioDevice {
  readonly type = VIRTIO_ID.CONSOLE;
  readonly name = "virtio-console";
  readonly queueSizes: readonly number[];
  readonly features = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_EVENT_IDX | VIRTIO_F.RING_INDIRECT_DESC;
  readonly configSize = CONSOLE_CONFIG_SIZE;
  readonly #output: ConsoleOutput;
  readonly #limit: number;
  /** Pending input chunks (copies), oldest first; `#consumed` bytes of the first are sent. */
  readonly #backlog: Uint8Array[] = [];
  #backlogBytes = 0;
  #consumed = 0;
  #context?: ActivateContext;
  #broken = false;
  readonly #stats: VirtioConsoleStats = { bytesTransmitted: 0, bytesReceived: 0, bytesDropped: 0 };

  constructor(options: VirtioConsoleOptions) {
    const size = options.queueSize ?? 256;
    this.queueSizes = [size, size];
    this.#output = options.output;
    this.#limit = options.inputBufferBytes ?? CONSOLE_DEFAULT_INPUT_BUFFER;
  }

  /** A snapshot of the counters. */
  get stats(): VirtioConsoleStats {
    return { ...this.#stats };
  }

  /** Input bytes waiting for receive buffers. */
  get pendingInput(): number {
    return this.#backlogBytes;
  }

  /** Pending input and counters, for the transport's state. */
  save(): VirtioConsoleState {
    const input = new Uint8Array(this.#backlogBytes);
    let at = 0;
    this.#backlog.forEach((chunk, i) => {
      const rest = i === 0 ? chunk.subarray(this.#consumed) : chunk;
      input.set(rest, at);
      at += rest.length;
    });
    return { version: 1, input: encodeBase64(input), stats: this.stats };
  }

  /** Checks a saved state (untrusted) and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    r.version([1]);
    const input = r.bytes("input", { max: this.#limit });
    const stats = readCounters(r, "stats", ["bytesTransmitted", "bytesReceived", "bytesDropped"]);
    return () => {
      this.#backlog.length = 0;
      if (input.length > 0) this.#backlog.push(input);
      this.#backlogBytes = input.length;
      this.#consumed = 0;
      Object.assign(this.#stats, stats);
    };
  }

  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0); // cols and rows 0 (no VIRTIO_CONSOLE_F_SIZE), max_nr_ports unused
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    // emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, which is not offered.
  }

  /**
   * Queues host input (typed or piped) for the guest; bytes beyond the backlog bound are
   * dropped and counted. Delivered at once if the guest has receive buffers posted.
   */
  receive(bytes: Uint8Array): void {
    const room = this.#limit - this.#backlogBytes;
    const take = Math.min(room, bytes.length);
    this.#stats.bytesDropped += bytes.length - take;
    if (take > 0) {
      this.#backlog.push(bytes.slice(0, take));
      this.#backlogBytes += take;
    }
    this.#deliverInput();
  }

  activate(context: ActivateContext): void {
    this.#context = context;
    this.#broken = false;
    if (context.restoring) return; // served from the resume kick
    this.#transmit();
    this.#deliverInput();
  }

  notify(queueIndex: number): void {
    if (queueIndex === CONSOLE_RECEIVE_QUEUE) this.#deliverInput();
    else if (queueIndex === CONSOLE_TRANSMIT_QUEUE) this.#transmit();
  }

  reset(): void {
    // Pending input stays: it was typed for whoever drives the console next.
    this.#context = undefined;
    this.#broken = false;
  }

  #queue(index: number): VirtQueue | undefined {
    if (!this.#context || this.#broken) return undefined;
    return this.#context.queues[index];
  }

  #transmit(): void {
    const queue = this.#queue(CONSOLE_TRANSMIT_QUEUE);
    if (!queue) return;
    this.#run(CONSOLE_TRANSMIT_QUEUE, queue, () => {
      const chain = queue.pop();
      if (!chain) return false;
      // Writable buffers in a transmit chain carry nothing: they are ignored.
      for (const buffer of chain.readable) this.#output.write(buffer.bytes);
      this.#stats.bytesTransmitted += chain.readableLength;
      queue.push(chain.head, 0);
      return true;
    });
  }

  #deliverInput(): void {
    const queue = this.#queue(CONSOLE_RECEIVE_QUEUE);
    if (!queue) return;
    this.#run(CONSOLE_RECEIVE_QUEUE, queue, () => {
      if (this.#backlogBytes === 0) return false;
      const chain = queue.pop();
      if (!chain) return false;
      let written = 0;
      for (const buffer of chain.writable) {
        written += this.#take(buffer.bytes);
        if (this.#backlogBytes === 0) break;
      }
      this.#stats.bytesReceived += written;
      queue.push(chain.head, written);
      return true;
    });
  }

  /** Moves backlog bytes into `target`; returns how many. */
  #take(target: Uint8Array): number {
    let written = 0;
    while (written < target.length && this.#backlog.length > 0) {
      const chunk = this.#backlog[0];
      const n = Math.min(chunk.length - this.#consumed, target.length - written);
      target.set(chunk.subarray(this.#consumed, this.#consumed + n), written);
      written += n;
      this.#consumed += n;
      this.#backlogBytes -= n;
      if (this.#consumed === chunk.length) {
        this.#backlog.shift();
        this.#consumed = 0;
      }
    }
    return written;
  }

  /** Runs `step` until it returns false; interrupts once; a malformed chain fails the device. */
  #run(index: number, queue: VirtQueue, step: () => boolean): void {
    const context = this.#context!;
    let used = false;
    try {
      while (step()) used = true;
    } catch (error) {
      this.#broken = true;
      context.fail(`${this.name}: ${(error as Error).message}`);
      return;
    }
    if (used && queue.needsInterrupt()) context.interrupt.usedBuffer(index);
  }
}
