/**
 * The `null` console: output is discarded, there is no input.
 *
 * @module
 */

import type { ConsoleBackend, ConsoleStats } from "./console.ts";

/** A console that discards output (still counting it) and never produces input. */
export class NullConsole implements ConsoleBackend {
  readonly kind = "null";
  #discarded = 0;

  /** Discarded bytes count as dropped, so they stay visible in diagnostics. */
  get stats(): ConsoleStats {
    return { bytesWritten: 0, bytesDropped: this.#discarded, bytesRead: 0 };
  }

  write(bytes: Uint8Array): void {
    this.#discarded += bytes.length;
  }

  startInput(): void {}

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
