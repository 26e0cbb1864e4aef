/**
 * The `file:PATH` console: output is appended to a file (created with mode 0600, since a
 * console log can hold secrets typed at a prompt); there is no input.
 *
 * @module
 */

import type { ConsoleBackend, ConsoleStats } from "./console.ts";
import { OutputQueue } from "./output_queue.ts";

/** Thrown when a console's file or terminal cannot be opened. */
export class ConsoleOpenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConsoleOpenError";
  }
}

/** A console that appends guest output to a file. */
export class FileConsole implements ConsoleBackend {
  readonly kind = "file";
  /** The file's path, as given. */
  readonly path: string;
  #file: Deno.FsFile;
  #queue: OutputQueue;
  #closed = false;

  /**
   * Opens (or creates, mode 0600) `path` for appending.
   * @throws {ConsoleOpenError} naming the path when it cannot be opened
   */
  constructor(path: string, options: { maxPendingBytes?: number } = {}) {
    this.path = path;
    try {
      this.#file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConsoleOpenError(
        `Cannot open console file ${path}: ${reason}; check that its directory exists and is writable`,
        { cause: error },
      );
    }
    this.#queue = new OutputQueue(this.#file, options);
  }

  get stats(): ConsoleStats {
    const { bytesWritten, bytesDropped } = this.#queue.stats;
    return { bytesWritten, bytesDropped, bytesRead: 0 };
  }

  write(bytes: Uint8Array): void {
    this.#queue.push(bytes);
  }

  startInput(): void {}

  flush(): Promise<void> {
    return this.#queue.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.flush();
    try {
      this.#file.close();
    } catch {
      // Already closed by the runtime at exit: nothing left to release.
    }
  }
}
