/**
 * A console output that collects the guest's text, for tests that wait for a line.
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";

export class TextSink implements ConsoleOutput {
  text = "";
  readonly #decoder = new TextDecoder();
  #waiters: Array<() => void> = [];

  write(bytes: Uint8Array): void {
    this.text += this.#decoder.decode(bytes, { stream: true });
    this.#waiters.splice(0).forEach((wake) => wake());
  }

  /** Resolves with the first match of `pattern` in the output; rejects after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`No ${pattern} in the output:\n${this.text}`);
      await new Promise<void>((wake) => {
        this.#waiters.push(wake);
        setTimeout(wake, 50);
      });
    }
  }

  /**
   * The numbers of every complete "tick N" line so far (a line still being written, such
   * as "tick 50" of "tick 500", does not count).
   */
  ticks(): number[] {
    return [...this.text.matchAll(/tick (\d+)\r?\n/g)].map((m) => Number(m[1]));
  }

  /**
   * Resolves once a complete "tick N" line with N >= `least` was written. The guest may
   * skip numbers (after a pause the PIT delivers the ticks it missed at once), so waiting
   * for one exact line could wait for ever.
   */
  async waitForTick(least: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ticks().some((tick) => tick >= least)) {
      if (Date.now() > deadline) {
        throw new Error(`No tick >= ${least} in the output:\n${this.text}`);
      }
      await new Promise<void>((wake) => {
        this.#waiters.push(wake);
        setTimeout(wake, 50);
      });
    }
  }
}
