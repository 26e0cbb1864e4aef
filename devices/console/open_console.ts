/**
 * Turns a console specification into a running backend.
 *
 * @module
 */

import type { ConsoleBackend } from "./console.ts";
import type { ConsoleSpec } from "./console_spec.ts";
import { FileConsole } from "./file_console.ts";
import { NullConsole } from "./null_console.ts";
import { StdioConsole, type StdioConsoleOptions } from "./stdio_console.ts";

/** Options passed through to the backend that `openConsole()` creates. */
export interface OpenConsoleOptions {
  /** For `stdio` on a terminal: called when the user types Ctrl-A x. */
  onEscape?: () => void;
  /** For `stdio`: replacement streams (tests). */
  stdio?: Omit<StdioConsoleOptions, "onEscape">;
  /** Most output bytes held while the host side is busy (default 1 MiB). */
  maxPendingBytes?: number;
}

/**
 * Creates the backend for `spec`.
 * @throws {ConsoleOpenError} when a `file:` console's file cannot be opened
 */
export function openConsole(spec: ConsoleSpec, options: OpenConsoleOptions = {}): ConsoleBackend {
  switch (spec.kind) {
    case "stdio":
      return new StdioConsole({
        ...options.stdio,
        onEscape: options.onEscape,
        maxPendingBytes: options.maxPendingBytes,
      });
    case "file":
      return new FileConsole(spec.path, { maxPendingBytes: options.maxPendingBytes });
    case "null":
      return new NullConsole();
  }
}
