/**
 * What client commands print and how they end: aligned tables for people, JSON for scripts,
 * and exit statuses scripts can rely on. Shared by the domain, pool and volume verbs.
 *
 * @module
 */

import { DenovisorError, errorCode, EXIT_OK, EXIT_STATUS } from "../common/errors.ts";

/**
 * Exit statuses of the client commands (documented in `denovisor help`). Scripts can tell
 * "the daemon is down" from "no such domain" from "wrong state" without parsing messages.
 */
export const CLIENT_EXIT = {
  OK: EXIT_OK,
  /** Anything else that went wrong. */
  FAILURE: EXIT_STATUS.internal,
  /** Unknown flags, missing or malformed arguments. */
  USAGE: EXIT_STATUS.usage,
  /** No daemon answered on the socket (or the socket refused us). */
  UNREACHABLE: EXIT_STATUS.unavailable,
  /** No such domain, pool or volume. */
  NOT_FOUND: EXIT_STATUS.not_found,
  /** The object is in the wrong state or in use (HTTP 409). */
  CONFLICT: EXIT_STATUS.conflict,
  /** The definition or request was refused as invalid (HTTP 400, or a bad file). */
  INVALID: EXIT_STATUS.invalid,
  /** Stopped by Ctrl-C (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130,
} as const;

/** The "Exit status" paragraph of `denovisor help`. */
export const EXIT_STATUS_HELP = `Exit status (client commands):
  0 ok, 1 failure, 2 usage error, 3 daemon unreachable, 4 not found,
  5 conflict (wrong state or in use), 6 invalid definition or request`;

/** A definition file that could not be read as JSON or xl.cfg (code `invalid`, exit 6). */
export class InvalidInputError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Where a command writes: stdout and stderr in the CLI, the terminal in the REPL. */
export interface CommandIo {
  /** One or more lines of normal output (a newline is added). */
  out(text: string): void;
  /** One or more lines of diagnostics (a newline is added). */
  err(text: string): void;
}

/** stdout and stderr. */
export const consoleIo: CommandIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

/**
 * The exit status for an error thrown by a client command: EXIT_STATUS of its code (the
 * daemon's code for a refused request, `unavailable` when no daemon answered, `usage` or
 * `invalid` for local refusals, `internal` for anything uncoded).
 */
export function exitStatusForError(error: unknown): number {
  return EXIT_STATUS[errorCode(error)];
}

/** Reports `error` on `io` with the command's name; returns the exit status. */
export function reportError(io: CommandIo, prefix: string, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  io.err(`${prefix}: ${message}`);
  if (Deno.env.get("DENOVISOR_DEBUG") && error instanceof Error && error.stack) {
    io.err(error.stack);
  }
  return exitStatusForError(error);
}

/** Column alignment for `formatTable`. */
export type Align = "left" | "right";

/**
 * Lays rows out under headers like `virsh list`: a header line, a dashed rule, and columns
 * padded to the widest cell. Cells are printed as given (control characters replaced, as
 * names come from users).
 */
export function formatTable(
  headers: string[],
  rows: (string | number)[][],
  options: { align?: Align[]; indent?: string } = {},
): string {
  const indent = options.indent ?? " ";
  const cells = rows.map((row) => row.map((cell) => printable(String(cell))));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...cells.map((row) => (row[column] ?? "").length))
  );
  const line = (row: string[]) =>
    indent + row.map((cell, column) => {
      const width = widths[column];
      if (column === row.length - 1 && options.align?.[column] !== "right") return cell;
      return options.align?.[column] === "right" ? cell.padStart(width) : cell.padEnd(width);
    }).join("   ").trimEnd();
  const total = widths.reduce((sum, width) => sum + width, 0) + 3 * (widths.length - 1);
  return [line(headers), indent.replace(/ /g, "-") + "-".repeat(total), ...cells.map(line)]
    .join("\n");
}

/** `key: value` lines with the values aligned, like `virsh dominfo`. */
export function formatFields(fields: [string, string | number | undefined][]): string {
  const shown = fields.filter(([, value]) => value !== undefined && value !== "");
  const width = Math.max(0, ...shown.map(([key]) => key.length + 1));
  return shown.map(([key, value]) => `${(key + ":").padEnd(width)}  ${printable(String(value))}`)
    .join("\n");
}

/** Machine output: pretty-printed JSON. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Replaces control characters so that data from users cannot drive the terminal. */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?");
}

/** A duration for people: "3.25 s", "1 h 02 min". */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
}
