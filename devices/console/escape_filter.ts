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
export const ESCAPE_HELP = escapeHelp(ESCAPE_BYTE);

/** The help text for the escape key `byte` (`C-a x    exit`...). */
export function escapeHelp(byte: number): string {
  // C-a for letters (as QEMU writes them), C-] for the others.
  const key = `C-${String.fromCharCode(byte >= 1 && byte <= 26 ? byte | 0x60 : byte | 0x40)}`;
  const pad = " ".repeat(Math.max(1, 9 - `${key} ${key}`.length));
  return `\r\n${key} x    exit\r\n${key} h    print this help\r\n` +
    `${key} ${key}${pad}send ${key} to the guest\r\n`;
}

/** Keys that cannot be an escape key: terminals and line editing need them as they are. */
const RESERVED_KEYS = new Set([0x00, 0x03, 0x08, 0x09, 0x0a, 0x0d, 0x1b]);

/**
 * The control byte of an escape key written `^]`, `^A`, `ctrl-]` or `C-a` (for
 * `run --escape` and `console --escape`); undefined when it is not a usable control key
 * (Ctrl-C, Enter, Tab, Backspace, Escape and NUL are kept for themselves).
 */
export function parseEscapeKey(text: string): number | undefined {
  const match = /^(?:\^|ctrl-|c-)(.)$/i.exec(text.trim());
  if (!match) return undefined;
  const code = match[1].toUpperCase().charCodeAt(0);
  if (code < 0x40 || code > 0x5f) return undefined;
  const byte = code & 0x1f;
  return RESERVED_KEYS.has(byte) ? undefined : byte;
}

/** How a control byte is written: `^]`, `^A`. */
export function escapeKeyName(byte: number): string {
  return `^${String.fromCharCode(byte | 0x40)}`;
}

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
  readonly #escape: number;

  /** A filter for the escape key `escapeByte` (default Ctrl-A). */
  constructor(escapeByte = ESCAPE_BYTE) {
    this.#escape = escapeByte;
  }

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
        if (byte === this.#escape) this.#afterEscape = true;
        else forward.push(byte);
        continue;
      }
      this.#afterEscape = false;
      if (byte === this.#escape) forward.push(byte);
      else if (byte === QUIT) return { forward: Uint8Array.from(forward), quit: true, help };
      else if (HELP.includes(byte)) help = true;
    }
    return { forward: Uint8Array.from(forward), quit: false, help };
  }
}
