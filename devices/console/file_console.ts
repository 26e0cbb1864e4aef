/**
 * The `file:PATH` console: output is appended to a file (created with mode 0600, since a
 * console log can hold secrets typed at a prompt); there is no input. Only regular files
 * and character devices (a terminal, /dev/null) are accepted: opening a FIFO for writing
 * waits for a reader, which would hang the VMM before boot. A write that fails (ENOSPC,
 * /dev/full) is kept in `writeError` so that the caller can report it.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { ConsoleBackend, ConsoleStats } from "./console.ts";
import { OutputQueue } from "./output_queue.ts";

/** Thrown when a console's file or terminal cannot be opened. */
export class ConsoleOpenError extends DenovisorError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
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
      refuseUnwritable(path, statOrUndefined(path));
      this.#file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
    } catch (error) {
      if (error instanceof ConsoleOpenError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConsoleOpenError(
        `Cannot open console file ${path}: ${reason}; check that its directory exists and is writable`,
        { cause: error },
      );
    }
    try {
      // Again on what was opened: the path may have been replaced in between.
      refuseUnwritable(path, this.#file.statSync());
    } catch (error) {
      this.#file.close();
      throw error;
    }
    this.#queue = new OutputQueue(this.#file, options);
  }

  /** The first write that failed (the file system is full, /dev/full...), if any. */
  get writeError(): Error | undefined {
    return this.#queue.stats.error;
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

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined; // created by the open
    throw error;
  }
}

/** Refuses what a console cannot append to without blocking or harm. */
function refuseUnwritable(path: string, info: Deno.FileInfo | undefined): void {
  if (info === undefined || info.isFile || info.isCharDevice) return;
  const kind = info.isFifo
    ? "a FIFO (opening it would wait for a reader)"
    : info.isDirectory
    ? "a directory"
    : info.isBlockDevice
    ? "a block device"
    : info.isSocket
    ? "a socket"
    : "not a regular file";
  throw new ConsoleOpenError(
    `Cannot use console file ${path}: it is ${kind}; give a regular file or a terminal`,
  );
}
