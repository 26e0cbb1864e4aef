/**
 * The `stdio` console: guest output to stdout, input from stdin.
 *
 * On a terminal, stdin is put in raw mode so every key (Ctrl-C included) reaches the
 * guest, and Ctrl-A x leaves (see escape_filter.ts). Raw mode is undone on `close()` and
 * also when the process unloads or dies of an uncaught error, so a crash does not leave
 * the user's shell unusable. When stdin is not a terminal it is read as a plain byte
 * stream, with no escape processing, and its end only ends input, never the VM.
 *
 * @module
 */

import type { ConsoleBackend, ConsoleInputHandler, ConsoleStats } from "./console.ts";
import { ConsoleEscapeFilter, ESCAPE_BYTE, escapeHelp } from "./escape_filter.ts";
import { type ByteWriter, OutputQueue } from "./output_queue.ts";

/** The terminal side of stdin; `Deno.stdin` satisfies it. */
export interface StdioInput {
  readonly readable: ReadableStream<Uint8Array>;
  isTerminal(): boolean;
  setRaw(mode: boolean): void;
}

/** Options for a stdio console; the streams are replaceable for tests. */
export interface StdioConsoleOptions {
  /** Called when the user types the quit sequence (Ctrl-A x) on a terminal. */
  onEscape?: () => void;
  /** Defaults to `Deno.stdin`. */
  input?: StdioInput;
  /** Defaults to `Deno.stdout`. */
  output?: ByteWriter;
  /** Most output bytes held while stdout is busy; see output_queue.ts. */
  maxPendingBytes?: number;
  /** The escape key (default Ctrl-A, as QEMU's): escape_filter.ts. */
  escapeByte?: number;
}

/** A console on the VMM's own stdin and stdout. */
export class StdioConsole implements ConsoleBackend {
  readonly kind = "stdio";
  #input: StdioInput;
  #queue: OutputQueue;
  #onEscape: () => void;
  #escapes: ConsoleEscapeFilter;
  #help: string;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #readLoop: Promise<void> | undefined;
  #rawMode = false;
  #bytesRead = 0;
  #closed = false;
  #restoreOnExit = () => this.#restoreTerminal();

  /** Creates the console; nothing is read and the terminal is untouched until `startInput()`. */
  constructor(options: StdioConsoleOptions = {}) {
    this.#input = options.input ?? Deno.stdin;
    this.#queue = new OutputQueue(options.output ?? Deno.stdout, options);
    this.#onEscape = options.onEscape ?? (() => {});
    this.#escapes = new ConsoleEscapeFilter(options.escapeByte ?? ESCAPE_BYTE);
    this.#help = escapeHelp(options.escapeByte ?? ESCAPE_BYTE);
  }

  get stats(): ConsoleStats {
    const { bytesWritten, bytesDropped } = this.#queue.stats;
    return { bytesWritten, bytesDropped, bytesRead: this.#bytesRead };
  }

  /** True while this console holds the terminal in raw mode. */
  get rawMode(): boolean {
    return this.#rawMode;
  }

  write(bytes: Uint8Array): void {
    this.#queue.push(bytes);
  }

  startInput(onInput: ConsoleInputHandler): void {
    if (this.#closed || this.#readLoop) return;
    const terminal = this.#input.isTerminal();
    if (terminal) {
      this.#input.setRaw(true);
      this.#rawMode = true;
      globalThis.addEventListener("unload", this.#restoreOnExit);
      globalThis.addEventListener("error", this.#restoreOnExit);
      globalThis.addEventListener("unhandledrejection", this.#restoreOnExit);
    }
    this.#reader = this.#input.readable.getReader();
    this.#readLoop = this.#readAll(this.#reader, onInput, terminal);
  }

  flush(): Promise<void> {
    return this.#queue.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#restoreTerminal();
    // Cancelling (not just abandoning) the read lets the process exit with stdin open.
    await this.#reader?.cancel().catch(() => {});
    await this.#readLoop;
    await this.#queue.flush();
  }

  async #readAll(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    onInput: ConsoleInputHandler,
    terminal: boolean,
  ): Promise<void> {
    try {
      while (!this.#closed) {
        const { value, done } = await reader.read();
        if (done) return; // end of piped input: the guest just gets no more
        if (!terminal) {
          this.#deliver(value, onInput);
          continue;
        }
        const { forward, quit, help } = this.#escapes.filter(value);
        this.#deliver(forward, onInput);
        if (help) this.#queue.push(new TextEncoder().encode(this.#help));
        if (quit) {
          this.#onEscape();
          return;
        }
      }
    } catch {
      // stdin failed (closed under us): input ends; output and the VM carry on.
    } finally {
      reader.releaseLock();
    }
  }

  #deliver(bytes: Uint8Array, onInput: ConsoleInputHandler): void {
    if (bytes.length === 0 || this.#closed) return;
    this.#bytesRead += bytes.length;
    onInput(bytes);
  }

  #restoreTerminal(): void {
    if (!this.#rawMode) return;
    this.#rawMode = false;
    globalThis.removeEventListener("unload", this.#restoreOnExit);
    globalThis.removeEventListener("error", this.#restoreOnExit);
    globalThis.removeEventListener("unhandledrejection", this.#restoreOnExit);
    try {
      this.#input.setRaw(false);
    } catch {
      // The terminal is gone (e.g. the session hung up): nothing to restore.
    }
  }
}
