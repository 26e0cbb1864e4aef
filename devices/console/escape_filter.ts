/**
 * The console escape sequence, as in QEMU's `-serial mon:stdio`: Ctrl-A then `x` quits,
 * Ctrl-A then `h` or `?` prints help, Ctrl-A Ctrl-A sends one Ctrl-A to the guest, and
 * Ctrl-A followed by anything else is swallowed. Pure, so it is tested without a TTY.
 *
 * @module
 */

/** The escape byte, Ctrl-A. */
export const ESCAPE_BYTE = 0x01;

/** Help text printed for Ctrl-A h, with CR LF because the terminal is in raw mode. */
export const ESCAPE_HELP = "\r\nC-a x    exit\r\nC-a h    print this help\r\n" +
  "C-a C-a  send C-a to the guest\r\n";

const QUIT = "x".charCodeAt(0);
const HELP = ["h".charCodeAt(0), "?".charCodeAt(0)];

/** What one chunk of terminal input amounts to. */
export interface EscapeFilterResult {
  /** Bytes for the guest, with escape sequences removed. */
  readonly forward: Uint8Array;
  /** The user asked to quit; bytes after the sequence are discarded. */
  readonly quit: boolean;
  /** The user asked for help (once or more in this chunk). */
  readonly help: boolean;
}

/** Splits terminal input into guest bytes and escape commands; keeps state across chunks. */
export class ConsoleEscapeFilter {
  #afterEscape = false;

  /** True when the last chunk ended with a lone Ctrl-A waiting for its command. */
  get pending(): boolean {
    return this.#afterEscape;
  }

  /** Filters one chunk of input. */
  filter(input: Uint8Array): EscapeFilterResult {
    const forward: number[] = [];
    let help = false;
    for (const byte of input) {
      if (!this.#afterEscape) {
        if (byte === ESCAPE_BYTE) this.#afterEscape = true;
        else forward.push(byte);
        continue;
      }
      this.#afterEscape = false;
      if (byte === ESCAPE_BYTE) forward.push(byte);
      else if (byte === QUIT) return { forward: Uint8Array.from(forward), quit: true, help };
      else if (HELP.includes(byte)) help = true;
    }
    return { forward: Uint8Array.from(forward), quit: false, help };
  }
}
