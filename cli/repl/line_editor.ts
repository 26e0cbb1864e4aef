/**
 * A small line editor for the REPL on a raw terminal: cursor movement, the usual Emacs
 * keys of readline, history, Tab completion (a list on the second Tab), and messages
 * printed above the line being typed without garbling it. It only sees bytes in and text
 * out, so tests drive it without a terminal.
 *
 * Keys: Left/Right, Ctrl-B/F; Alt-B/F and Ctrl-Left/Right (a word back, forward); Home/End,
 * Ctrl-A/E; Backspace; Delete; Ctrl-D (delete, or end of input on an empty line); Ctrl-U
 * (to line start); Ctrl-K (to line end); Ctrl-W, Alt-Backspace (word back); Alt-D (word
 * forward); Ctrl-C (drop the line); Ctrl-L (clear screen); Up/Down, Ctrl-P/N (history);
 * Ctrl-R (reverse history search, as readline's: type to search, Ctrl-R for an older
 * match, Enter runs it, Ctrl-G gives up, any other key edits it); Tab (complete); Enter.
 *
 * @module
 */

import { commonPrefix, escapeLength, layOut } from "./terminal_text.ts";
import { HistorySearch } from "./history_search.ts";

/** What Tab may put in place of `line.slice(start, cursor)`. */
export interface Completion {
  start: number;
  candidates: string[];
}

/** Completes at `cursor` in `line`. */
export type Completer = (line: string, cursor: number) => Promise<Completion> | Completion;

/** Options of a LineEditor. */
export interface LineEditorOptions {
  /** Writes to the terminal. */
  write: (text: string) => void;
  complete?: Completer;
  /** Earlier lines, oldest first; the editor appends accepted lines to it. */
  history?: string[];
  /** The terminal's width, for the list of completions. */
  columns?: () => number;
  /** Switches the terminal to raw mode and back around each line. */
  setRaw?: (raw: boolean) => void;
}

/** The longest history kept in memory. */
const MAX_HISTORY = 1000;
const ESC = "\x1b";

/** Reads one line at a time from a raw terminal. */
export class LineEditor {
  readonly history: string[];
  readonly #write: (text: string) => void;
  readonly #complete?: Completer;
  readonly #columns: () => number;
  readonly #setRaw?: (raw: boolean) => void;
  readonly #decoder = new TextDecoder();
  #prompt = "";
  #chars: string[] = [];
  #cursor = 0;
  #historyIndex = 0;
  #saved = "";
  /** Decoded input not handled yet (typed ahead of a finished line). */
  #pending = "";
  /** The start of an escape sequence whose end has not arrived yet. */
  #partial = "";
  #skipLineFeed = false;
  #lastKeyWasTab = false;
  #active = false;
  /** The terminal row of the cursor, counted from the prompt's row (long lines wrap). */
  #cursorRow = 0;
  /** A reverse history search under way (Ctrl-R), with the cursor before it. */
  #search: { search: HistorySearch; prompt: string; cursor: number } | undefined;

  constructor(options: LineEditorOptions) {
    this.#write = options.write;
    this.#complete = options.complete;
    this.history = options.history ?? [];
    this.#columns = options.columns ?? (() => 80);
    this.#setRaw = options.setRaw;
  }

  /** The text typed so far. */
  get line(): string {
    return this.#chars.join("");
  }

  /** Cursor position in characters. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Whether a prompt is shown and input is being read. */
  get active(): boolean {
    return this.#active;
  }

  /**
   * Shows `prompt` and reads one line through `read`: the line (without newline), "" after
   * Ctrl-C, or null at end of input (Ctrl-D on an empty line, or `read` gave null).
   */
  async readLine(
    prompt: string,
    read: () => Promise<Uint8Array | null>,
  ): Promise<string | null> {
    this.#prompt = prompt;
    this.#chars = [];
    this.#cursor = 0;
    this.#historyIndex = this.history.length;
    this.#saved = "";
    this.#lastKeyWasTab = false;
    this.#search = undefined;
    this.#active = true;
    this.#setRaw?.(true);
    this.#cursorRow = 0;
    this.#write(prompt);
    try {
      while (true) {
        if (this.#pending.length > 0) {
          const text = this.#partial + this.#pending;
          this.#pending = "";
          this.#partial = "";
          const result = await this.#handle(text);
          if (result !== undefined) return result;
        }
        const bytes = await read();
        if (bytes === null) {
          this.#toEnd();
          this.#write("\r\n");
          return null;
        }
        this.#pending += this.#decoder.decode(bytes, { stream: true });
      }
    } finally {
      this.#active = false;
      this.#setRaw?.(false);
    }
  }

  /**
   * Prints `text` above the line being typed (clear the line, print, show the prompt and
   * the typed text again); a plain print when no line is being read.
   */
  printAbove(text: string): void {
    const lines = text.replace(/\r?\n/g, "\r\n") + "\r\n";
    if (!this.#active) {
      this.#write(lines);
      return;
    }
    this.#write(`${this.#up(this.#cursorRow)}\r${ESC}[J${lines}`);
    this.#cursorRow = 0;
    this.#redraw();
  }

  /** Handles decoded input; returns a result when a line is finished. */
  async #handle(text: string): Promise<string | null | undefined> {
    let index = 0;
    while (index < text.length) {
      const char = String.fromCodePoint(text.codePointAt(index)!);
      if (this.#skipLineFeed) {
        this.#skipLineFeed = false;
        if (char === "\n") {
          index++;
          continue;
        }
      }
      if (char === ESC) {
        const length = escapeLength(text, index);
        if (length === 0) {
          // Incomplete sequence: wait for the rest.
          this.#partial = text.slice(index);
          return undefined;
        }
        this.#endSearch();
        this.#escape(text.slice(index, index + length));
        index += length;
        this.#lastKeyWasTab = false;
        continue;
      }
      index += char.length;
      if (this.#search && this.#searchKey(char)) continue;
      const wasTab = this.#lastKeyWasTab;
      this.#lastKeyWasTab = false;
      switch (char) {
        case "\r":
        case "\n": {
          this.#skipLineFeed = char === "\r";
          this.#pending = text.slice(index) + this.#pending;
          return this.#accept();
        }
        case "\t":
          await this.#tab(wasTab);
          this.#lastKeyWasTab = true;
          break;
        case "\x7f":
        case "\b":
          if (this.#cursor > 0) {
            this.#chars.splice(--this.#cursor, 1);
            this.#redraw();
          }
          break;
        case "\x01":
          this.#move(0);
          break;
        case "\x05":
          this.#move(this.#chars.length);
          break;
        case "\x02":
          this.#move(this.#cursor - 1);
          break;
        case "\x06":
          this.#move(this.#cursor + 1);
          break;
        case "\x03":
          this.#toEnd();
          this.#write("^C\r\n");
          this.#pending = text.slice(index) + this.#pending;
          this.#chars = [];
          this.#cursor = 0;
          return "";
        case "\x04":
          if (this.#chars.length === 0) {
            this.#write("\r\n");
            return null;
          }
          this.#deleteAtCursor();
          break;
        case "\x15":
          this.#chars.splice(0, this.#cursor);
          this.#cursor = 0;
          this.#redraw();
          break;
        case "\x0b":
          this.#chars.splice(this.#cursor);
          this.#redraw();
          break;
        case "\x17":
          this.#deleteWordBack();
          break;
        case "\x0c":
          this.#write(`${ESC}[H${ESC}[2J`);
          this.#cursorRow = 0;
          this.#redraw();
          break;
        case "\x10":
          this.#historyStep(-1);
          break;
        case "\x0e":
          this.#historyStep(1);
          break;
        case "\x12":
          this.#startSearch();
          break;
        default:
          if (char >= " ") this.#insert(char);
      }
    }
    return undefined;
  }

  #accept(): string {
    this.#endSearch();
    const line = this.line;
    this.#toEnd();
    this.#write("\r\n");
    if (line.trim() !== "" && this.history[this.history.length - 1] !== line) {
      this.history.push(line);
      if (this.history.length > MAX_HISTORY) {
        this.history.splice(0, this.history.length - MAX_HISTORY);
      }
    }
    return line;
  }

  #escape(sequence: string): void {
    if (sequence.length === 2) {
      // Alt-x arrives as ESC x.
      if (sequence[1] === "b") this.#move(this.#wordStart());
      else if (sequence[1] === "f") this.#move(this.#wordEnd());
      else if (sequence[1] === "d") this.#deleteTo(this.#wordEnd());
      else if (sequence[1] === "\x7f" || sequence[1] === "\b") this.#deleteTo(this.#wordStart());
      return;
    }
    const final = sequence[sequence.length - 1];
    const parameter = sequence.slice(2, -1);
    // Ctrl-Left/Right (ESC [1;5D) and Alt-Left/Right (ESC [1;3D) move by words.
    if (sequence[1] === "[" && (parameter === "1;5" || parameter === "1;3")) {
      if (final === "C") this.#move(this.#wordEnd());
      else if (final === "D") this.#move(this.#wordStart());
      return;
    }
    if (sequence[1] === "[" && final === "~") {
      if (parameter === "1" || parameter === "7") this.#move(0);
      else if (parameter === "4" || parameter === "8") this.#move(this.#chars.length);
      else if (parameter === "3") this.#deleteAtCursor();
      return;
    }
    switch (final) {
      case "A":
        this.#historyStep(-1);
        break;
      case "B":
        this.#historyStep(1);
        break;
      case "C":
        this.#move(this.#cursor + 1);
        break;
      case "D":
        this.#move(this.#cursor - 1);
        break;
      case "H":
        this.#move(0);
        break;
      case "F":
        this.#move(this.#chars.length);
        break;
    }
  }

  #insert(text: string): void {
    const chars = [...text];
    this.#chars.splice(this.#cursor, 0, ...chars);
    this.#cursor += chars.length;
    const width = this.#prompt.length + this.#chars.length;
    if (this.#cursor === this.#chars.length && width % this.#width() !== 0) {
      this.#write(text); // typing at the end: no redraw needed
      this.#cursorRow = Math.floor(width / this.#width());
    } else {
      this.#redraw();
    }
  }

  #deleteAtCursor(): void {
    if (this.#cursor < this.#chars.length) {
      this.#chars.splice(this.#cursor, 1);
      this.#redraw();
    }
  }

  /** Where the word before the cursor starts (readline's Alt-B: letters and digits). */
  #wordStart(): number {
    let position = this.#cursor;
    while (position > 0 && !isWordChar(this.#chars[position - 1])) position--;
    while (position > 0 && isWordChar(this.#chars[position - 1])) position--;
    return position;
  }

  /** Where the word at or after the cursor ends (readline's Alt-F). */
  #wordEnd(): number {
    let position = this.#cursor;
    const length = this.#chars.length;
    while (position < length && !isWordChar(this.#chars[position])) position++;
    while (position < length && isWordChar(this.#chars[position])) position++;
    return position;
  }

  /** Deletes between the cursor and `position` (either side). */
  #deleteTo(position: number): void {
    const start = Math.min(position, this.#cursor);
    const end = Math.max(position, this.#cursor);
    if (start === end) return;
    this.#chars.splice(start, end - start);
    this.#cursor = start;
    this.#redraw();
  }

  #startSearch(): void {
    this.#search = {
      search: new HistorySearch(this.history, this.line),
      prompt: this.#prompt,
      cursor: this.#cursor,
    };
    this.#showSearch();
  }

  /** A key typed while searching; false when it ended the search and is still to handle. */
  #searchKey(char: string): boolean {
    const { search, prompt, cursor } = this.#search!;
    switch (search.key(char)) {
      case "searching":
        this.#showSearch();
        return true;
      case "cancelled":
        // Ctrl-G: the line as it was.
        this.#search = undefined;
        this.#prompt = prompt;
        this.#chars = [...search.before];
        this.#cursor = cursor;
        this.#redraw();
        return true;
      case "done":
        this.#endSearch();
        return false;
    }
  }

  #showSearch(): void {
    const view = this.#search!.search.view();
    this.#prompt = view.prompt;
    this.#chars = [...view.line];
    this.#cursor = view.cursor;
    this.#redraw();
  }

  /** Leaves the search with the line found, under the usual prompt. */
  #endSearch(): void {
    if (!this.#search) return;
    const { search, prompt } = this.#search;
    this.#search = undefined;
    this.#prompt = prompt;
    this.#historyIndex = search.match;
    this.#redraw();
  }

  #deleteWordBack(): void {
    let start = this.#cursor;
    while (start > 0 && this.#chars[start - 1] === " ") start--;
    while (start > 0 && this.#chars[start - 1] !== " ") start--;
    this.#chars.splice(start, this.#cursor - start);
    this.#cursor = start;
    this.#redraw();
  }

  #move(position: number): void {
    const target = Math.max(0, Math.min(this.#chars.length, position));
    if (target === this.#cursor) return;
    this.#cursor = target;
    this.#redraw();
  }

  /** Puts the cursor after the last character (before printing below the line). */
  #toEnd(): void {
    if (this.#cursor === this.#chars.length) return;
    this.#cursor = this.#chars.length;
    this.#redraw();
  }

  #historyStep(step: number): void {
    const index = this.#historyIndex + step;
    if (index < 0 || index > this.history.length) return;
    if (this.#historyIndex === this.history.length) this.#saved = this.line;
    this.#historyIndex = index;
    this.#chars = [...(index === this.history.length ? this.#saved : this.history[index])];
    this.#cursor = this.#chars.length;
    this.#redraw();
  }

  async #tab(secondTab: boolean): Promise<void> {
    if (!this.#complete) return;
    const line = this.line;
    const { start, candidates } = await this.#complete(line, this.#cursor);
    const word = [...line].slice(start, this.#cursor).join("");
    const matching = [...new Set(candidates.filter((candidate) => candidate.startsWith(word)))];
    if (matching.length === 0) {
      this.#write("\x07");
      return;
    }
    if (matching.length === 1) {
      const [only] = matching;
      this.#replaceWord(start, only + (/[/=]$/.test(only) ? "" : " "));
      return;
    }
    const common = commonPrefix(matching);
    if (common.length > word.length) {
      this.#replaceWord(start, common);
      return;
    }
    if (!secondTab) {
      this.#write("\x07");
      return;
    }
    this.#toEnd();
    this.#write("\r\n" + layOut(matching.sort(), this.#width()).replace(/\n/g, "\r\n") + "\r\n");
    this.#cursorRow = 0;
    this.#redraw();
  }

  #replaceWord(start: number, text: string): void {
    this.#chars.splice(start, this.#cursor - start, ...text);
    this.#cursor = start + [...text].length;
    this.#redraw();
  }

  /**
   * Draws the prompt and the line again from the prompt's row and puts the cursor back,
   * across as many terminal rows as the line needs (as linenoise's multi-line mode).
   */
  #redraw(): void {
    const columns = this.#width();
    const total = this.#prompt.length + this.#chars.length;
    let out = `${this.#up(this.#cursorRow)}\r${this.#prompt}${this.line}${ESC}[J`;
    // After the last character the cursor sits on that character's row.
    let row = total === 0 ? 0 : Math.floor((total - 1) / columns);
    if (this.#cursor === this.#chars.length) {
      if (total > 0 && total % columns === 0) {
        // Terminals hold the cursor in the last column: move it to the next row.
        out += "\r\n";
        row++;
      }
      this.#cursorRow = row;
      this.#write(out);
      return;
    }
    const target = this.#prompt.length + this.#cursor;
    const targetRow = Math.floor(target / columns);
    const column = target % columns;
    out += `${this.#up(row - targetRow)}\r${column > 0 ? `${ESC}[${column}C` : ""}`;
    this.#cursorRow = targetRow;
    this.#write(out);
  }

  #up(rows: number): string {
    return rows > 0 ? `${ESC}[${rows}A` : "";
  }

  #width(): number {
    return Math.max(1, this.#columns());
  }
}

/** Letters and digits make words for Alt-B, Alt-F and Alt-D, as in readline. */
function isWordChar(char: string): boolean {
  return /[\p{L}\p{N}]/u.test(char);
}
