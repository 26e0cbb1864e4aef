/**
 * Ctrl-R in the REPL's line editor: readline's reverse incremental history search as a
 * small state machine that knows the history and the query, not the terminal. The editor
 * shows `view()` and hands it the keys typed while the search is on.
 *
 * @module
 */

/** What the editor shows during a search. */
export interface SearchView {
  prompt: string;
  line: string;
  /** Where the cursor goes in `line` (at the match, as readline puts it). */
  cursor: number;
}

/** What a key did to the search. */
export type SearchOutcome = "searching" | "cancelled" | "done";

/** One reverse history search, from Ctrl-R until a key ends it. */
export class HistorySearch {
  readonly #history: readonly string[];
  /** The line typed before Ctrl-R (shown until something matches, back on Ctrl-G). */
  readonly before: string;
  #query = "";
  /** The history index of the line shown; history.length while nothing matched. */
  #match: number;
  #failed = false;

  constructor(history: readonly string[], before: string) {
    this.#history = history;
    this.before = before;
    this.#match = history.length;
  }

  /** The history index of the line found (history.length when none). */
  get match(): number {
    return this.#match;
  }

  /**
   * Takes one key: printable characters extend the query, Backspace shortens it, Ctrl-R
   * looks further back; Ctrl-G cancels; any other key ends the search ("done": the line
   * found stays and the key is the editor's).
   */
  key(char: string): SearchOutcome {
    switch (char) {
      case "\x12":
        this.#findFrom(this.#match - 1);
        return "searching";
      case "\x07":
        return "cancelled";
      case "\x7f":
      case "\b":
        this.#query = this.#query.slice(0, -1);
        this.#findFrom(this.#history.length - 1);
        return "searching";
      default:
        if (char < " ") return "done";
        this.#query += char;
        this.#findFrom(Math.min(this.#match, this.#history.length - 1));
        return "searching";
    }
  }

  /** The prompt, line and cursor to show. */
  view(): SearchView {
    const line = this.#match < this.#history.length ? this.#history[this.#match] : this.before;
    const at = this.#query === "" ? -1 : line.indexOf(this.#query);
    return {
      prompt: `(${this.#failed ? "failed " : ""}reverse-i-search)'${this.#query}': `,
      line,
      cursor: at < 0 ? [...line].length : [...line.slice(0, at)].length,
    };
  }

  /** Finds the newest line at or before `from` holding the query (failed when none). */
  #findFrom(from: number): void {
    this.#failed = this.#query !== "";
    if (this.#query === "") return;
    for (let index = from; index >= 0; index--) {
      if (this.#history[index].includes(this.#query)) {
        this.#match = index;
        this.#failed = false;
        return;
      }
    }
  }
}
