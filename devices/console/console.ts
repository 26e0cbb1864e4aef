/**
 * The contract between character devices (the 16550 UART now, virtio-console later) and
 * the host side of a guest console.
 *
 * @module
 */

/** Where a character device sends the bytes the guest writes. */
export interface ConsoleOutput {
  /**
   * Takes bytes the guest wrote. Must not block and must copy `bytes` if it keeps them:
   * the caller may reuse the array.
   */
  write(bytes: Uint8Array): void;
}

/** Receives the bytes typed or piped into a console, in order. */
export type ConsoleInputHandler = (bytes: Uint8Array) => void;

/** Counters a console backend keeps for diagnostics. */
export interface ConsoleStats {
  /** Output bytes written to the host side. */
  readonly bytesWritten: number;
  /** Output bytes discarded because the host side could not keep up. */
  readonly bytesDropped: number;
  /** Input bytes handed to the device (after escape processing). */
  readonly bytesRead: number;
}

/** The kinds of console a domain can have; see `parseConsoleSpec()`. */
export type ConsoleKind = "stdio" | "file" | "null";

/** A host-side console: an output sink plus, for some kinds, an input source. */
export interface ConsoleBackend extends ConsoleOutput {
  /** Which kind of backend this is. */
  readonly kind: ConsoleKind;
  /** Current counters. */
  readonly stats: ConsoleStats;
  /**
   * Starts reading input and hands each chunk to `onInput`. Backends without input
   * ignore the call. Call at most once.
   */
  startInput(onInput: ConsoleInputHandler): void;
  /** Resolves when all output accepted so far has reached the host side. */
  flush(): Promise<void>;
  /**
   * Stops input, restores the terminal, writes out pending output and closes files.
   * Idempotent; never throws.
   */
  close(): Promise<void>;
}
