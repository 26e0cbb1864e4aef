/**
 * REPL history across sessions: one line per command in `<stateDir>/repl_history` when the
 * state directory is writable (root next to the daemon), else `~/.denovisor_history`, or
 * the file given with `repl --history FILE`.
 *
 * @module
 */

import { join } from "node:path";

/** Lines kept in the file and in memory. */
export const HISTORY_LIMIT = 1000;

/** Where the history goes when no --history is given. */
export function defaultHistoryFile(stateDir: string): string {
  try {
    const info = Deno.statSync(stateDir);
    if (info.isDirectory) {
      const path = join(stateDir, "repl_history");
      // Writable? Opening for append creates nothing new if it already exists.
      Deno.openSync(path, { append: true, create: true }).close();
      return path;
    }
  } catch {
    // Not ours to write: fall back to the home directory.
  }
  return join(Deno.env.get("HOME") ?? ".", ".denovisor_history");
}

/** Reads the saved history (oldest first); trims the file when it grew past twice the limit. */
export function loadHistory(path: string): string[] {
  let lines: string[];
  try {
    lines = Deno.readTextFileSync(path).split("\n").filter((line) => line.trim() !== "");
  } catch {
    return [];
  }
  if (lines.length > 2 * HISTORY_LIMIT) {
    lines = lines.slice(-HISTORY_LIMIT);
    try {
      Deno.writeTextFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
    } catch {
      // Read-only history: keep using it as it is.
    }
  }
  return lines.slice(-HISTORY_LIMIT);
}

/** Appends one line; a failure to save history never stops the REPL. */
export function appendHistory(path: string, line: string): void {
  if (line.trim() === "" || line.includes("\n")) return;
  try {
    Deno.writeTextFileSync(path, line + "\n", { append: true, create: true, mode: 0o600 });
  } catch {
    // Unwritable history file: the session still works.
  }
}
