/**
 * The xl.cfg(5) file syntax, as libxlu reads it: `KEY = VALUE` settings ended by a newline
 * or ';', values that are strings ('...' or "..." with C escapes), numbers (decimal or
 * 0x hex) or lists `[ v, v, ]` (trailing comma allowed, may span lines), `KEY += [...]`
 * appending to a list, and `#` comments. Errors carry the line number and show the
 * characters they quote escaped (a NUL or a byte-order mark must not reach the terminal raw).
 * Lines are limited to {@linkcode XL_MAX_LINE_LENGTH} characters: a real xl.cfg line is a
 * few hundred, and a 50 MB one must not cost gigabytes to refuse.
 *
 * @module
 */

import { DefinitionError } from "./definition_error.ts";

/** One atom: xl keeps numbers as their text; `quoted` tells which were strings. */
export interface XlAtom {
  text: string;
  quoted: boolean;
}

/** One `KEY = VALUE` setting. */
export interface XlSetting {
  key: string;
  value: XlAtom | XlAtom[];
  /** Line of the key, 1-based. */
  line: number;
}

/** An xl.cfg file that cannot be read, or whose settings cannot be mapped; `line` says where. */
export class XlCfgError extends DefinitionError {
  /** 1-based line number in the xl.cfg file. */
  readonly line: number;

  /** `path` names the xl value inside the line, e.g. "disk[1]". */
  constructor(line: number, problem: string, path = "") {
    super(path, problem);
    this.name = "XlCfgError";
    this.line = line;
    // One funnel for every message, which may quote the file's characters.
    this.message = visibleText(`xl.cfg line ${line}: ${path === "" ? "" : `${path}: `}${problem}`);
  }
}

/** The longest line an xl.cfg file may have (Linux's own command line is at most 2 KiB). */
export const XL_MAX_LINE_LENGTH = 65_536;

/**
 * `text` with control, invisible and direction-changing characters escaped (`\x00`,
 * `\ufeff`), so that a message quoting a file's bytes shows them and cannot drive the terminal.
 */
export function visibleText(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Refuses a file with a line longer than {@linkcode XL_MAX_LINE_LENGTH}, before parsing it. */
function checkLineLengths(text: string): void {
  let start = 0;
  for (let line = 1; start <= text.length; line++) {
    const end = text.indexOf("\n", start);
    const stop = end < 0 ? text.length : end;
    if (stop - start > XL_MAX_LINE_LENGTH) {
      throw new XlCfgError(
        line,
        `the line is ${stop - start} characters long; xl.cfg lines are limited to ` +
          `${XL_MAX_LINE_LENGTH}`,
      );
    }
    if (end < 0) return;
    start = end + 1;
  }
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
  "\\": "\\",
  "'": "'",
  '"': '"',
};

/** A cursor over the text that knows its line. */
class Scanner {
  readonly #text: string;
  #pos = 0;
  line = 1;

  constructor(text: string) {
    this.#text = text;
    // A byte-order mark some editors put first is not part of the settings.
    if (text.startsWith("\ufeff")) this.#pos = 1;
  }

  peek(): string {
    return this.#text[this.#pos] ?? "";
  }

  next(): string {
    const char = this.#text[this.#pos++] ?? "";
    if (char === "\n") this.line++;
    return char;
  }

  /** Skips blanks and comments; newlines too when `newlines`. */
  skip(newlines: boolean): void {
    for (;;) {
      const char = this.peek();
      if (char === " " || char === "\t" || char === "\r" || (newlines && char === "\n")) {
        this.next();
      } else if (char === "#") {
        while (this.peek() !== "\n" && this.peek() !== "") this.next();
      } else if (char === "\\" && this.#text[this.#pos + 1] === "\n") {
        this.next();
        this.next();
      } else {
        return;
      }
    }
  }

  match(pattern: RegExp): string | undefined {
    pattern.lastIndex = this.#pos;
    const found = pattern.exec(this.#text);
    if (!found) return undefined;
    this.#pos += found[0].length;
    return found[0];
  }
}

function readString(scanner: Scanner): string {
  const quote = scanner.next();
  const line = scanner.line;
  let text = "";
  for (;;) {
    const char = scanner.next();
    if (char === "" || char === "\n") {
      throw new XlCfgError(line, `the string opened with ${quote} is not closed on its line`);
    }
    if (char === quote) return text;
    if (char === "\\") {
      const escaped = scanner.next();
      if (ESCAPES[escaped] !== undefined) {
        text += ESCAPES[escaped];
      } else if (escaped === "x") {
        const hex = scanner.match(/[0-9a-fA-F]{1,2}/y);
        if (hex === undefined) throw new XlCfgError(line, "\\x needs hex digits");
        text += String.fromCharCode(parseInt(hex, 16));
      } else if (/[0-7]/.test(escaped)) {
        const more = scanner.match(/[0-7]{0,2}/y) ?? "";
        text += String.fromCharCode(parseInt(escaped + more, 8));
      } else {
        throw new XlCfgError(line, `unknown escape \\${escaped} in a string`);
      }
      continue;
    }
    text += char;
  }
}

function readAtom(scanner: Scanner): XlAtom {
  const char = scanner.peek();
  if (char === '"' || char === "'") return { text: readString(scanner), quoted: true };
  const number = scanner.match(/0x[0-9a-fA-F]+|[0-9]+/y);
  if (number !== undefined) {
    return {
      text: String(number.startsWith("0x") ? parseInt(number, 16) : Number(number)),
      quoted: false,
    };
  }
  const found = char === ""
    ? "the end of the file"
    : char === "\n"
    ? "the end of the line"
    : `'${char}'`;
  throw new XlCfgError(
    scanner.line,
    `expected a value (a quoted string, a number or a [list]), found ${found}`,
  );
}

function readList(scanner: Scanner): XlAtom[] {
  const line = scanner.line;
  scanner.next(); // [
  const items: XlAtom[] = [];
  for (;;) {
    scanner.skip(true);
    if (scanner.peek() === "]") {
      scanner.next();
      return items;
    }
    if (scanner.peek() === "") {
      throw new XlCfgError(line, "the list opened here is not closed with ]");
    }
    items.push(readAtom(scanner));
    scanner.skip(true);
    const separator = scanner.peek();
    if (separator === ",") {
      scanner.next();
    } else if (separator !== "]") {
      throw new XlCfgError(scanner.line, `expected ',' or ']' in a list, found '${separator}'`);
    }
  }
}

/** Reads every setting of an xl.cfg file, in order; duplicate keys are refused. */
export function readXlSettings(text: string): XlSetting[] {
  checkLineLengths(text);
  const scanner = new Scanner(text);
  const settings = new Map<string, XlSetting>();
  for (;;) {
    scanner.skip(true);
    if (scanner.peek() === "") return [...settings.values()];
    if (scanner.peek() === ";") {
      scanner.next();
      continue;
    }
    const line = scanner.line;
    const key = scanner.match(/[A-Za-z_][A-Za-z0-9_]*/y);
    if (key === undefined) {
      throw new XlCfgError(
        line,
        `expected a setting such as name = "web", found '${scanner.peek()}'`,
      );
    }
    scanner.skip(false);
    const operator = scanner.match(/\+=|=/y);
    if (operator === undefined) throw new XlCfgError(line, `expected '=' after ${key}`);
    scanner.skip(false);
    const value = scanner.peek() === "[" ? readList(scanner) : readAtom(scanner);
    scanner.skip(false);
    const end = scanner.peek();
    if (end !== "\n" && end !== ";" && end !== "") {
      throw new XlCfgError(scanner.line, `unexpected '${end}' after the value of ${key}`);
    }
    const earlier = settings.get(key);
    if (operator === "+=") {
      if (!Array.isArray(value) || (earlier && !Array.isArray(earlier.value))) {
        throw new XlCfgError(line, `${key} += appends to a list; write ${key} += [ ... ]`);
      }
      const before = (earlier?.value as XlAtom[] | undefined) ?? [];
      settings.set(key, { key, value: [...before, ...value], line: earlier?.line ?? line });
      continue;
    }
    if (earlier) {
      throw new XlCfgError(line, `${key} is already set on line ${earlier.line}; set it once`);
    }
    settings.set(key, { key, value, line });
  }
}
