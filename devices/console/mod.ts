/**
 * Host-side consoles for the guest's serial port (and later virtio-console).
 *
 * @example
 * ```ts
 * import { openConsole, parseConsoleSpec } from "./mod.ts";
 * const console = openConsole(parseConsoleSpec("null"));
 * console.write(new TextEncoder().encode("hello\n"));
 * await console.close();
 * ```
 *
 * @module
 */

export type {
  ConsoleBackend,
  ConsoleInputHandler,
  ConsoleKind,
  ConsoleOutput,
  ConsoleStats,
} from "./console.ts";
export {
  type ConsoleSpec,
  ConsoleSpecError,
  formatConsoleSpec,
  parseConsoleSpec,
} from "./console_spec.ts";
export {
  ConsoleEscapeFilter,
  ESCAPE_BYTE,
  ESCAPE_HELP,
  type EscapeFilterResult,
} from "./escape_filter.ts";
export { ConsoleOpenError, FileConsole } from "./file_console.ts";
export { NullConsole } from "./null_console.ts";
export { openConsole, type OpenConsoleOptions } from "./open_console.ts";
export { type ByteWriter, OutputQueue, type OutputQueueStats } from "./output_queue.ts";
export { StdioConsole, type StdioConsoleOptions, type StdioInput } from "./stdio_console.ts";
