/**
 * The daemon's log lines under systemd: one journal entry per line, sent with journald's
 * native protocol (a datagram of `KEY=value` lines to /run/systemd/journal/socket, as
 * sd_journal_send(3) does), so an event carries its domain as a field of its own
 * (`DENOVISOR_DOMAIN=web`: `journalctl -u denovisor DENOVISOR_DOMAIN=web`) and journald adds
 * the time. Outside systemd (stderr is not the JOURNAL_STREAM) or when the socket refuses, the line goes to
 * stderr as it always did: one line, no timestamp of our own.
 *
 * @module
 */

import { sdNotify } from "./notify.ts";
import { fstat } from "../../ffi/file_stat.ts";

/** journald's socket for native entries. */
export const JOURNAL_SOCKET = "/run/systemd/journal/socket";
/** What systemd sets for a service whose stderr is connected to the journal. */
export const JOURNAL_STREAM_ENV = "JOURNAL_STREAM";
/** The journal field an entry about one domain names it in. */
export const DOMAIN_FIELD = "DENOVISOR_DOMAIN";

/** Fields of one log line beyond its text: `{ domain: "web" }`. */
export interface LogFields {
  /** The domain the line is about. */
  domain?: string;
  /** The event's kind ("started", "crashed"...), as DENOVISOR_EVENT. */
  event?: string;
}

/** Writes one log line with its fields. */
export type DaemonLog = (line: string, fields?: LogFields) => void;

/**
 * Whether stderr is the journal stream systemd connected (JOURNAL_STREAM is its
 * "device:inode", as systemd.exec(5) says to check): a daemon started by hand from such a
 * service, with its stderr piped elsewhere, keeps writing to its stderr.
 */
export function stderrIsJournal(value = Deno.env.get(JOURNAL_STREAM_ENV)): boolean {
  const match = /^(\d+):(\d+)$/.exec(value ?? "");
  if (!match) return false;
  try {
    const stat = fstat(2);
    return stat.dev === BigInt(match[1]) && stat.ino === BigInt(match[2]);
  } catch {
    return false;
  }
}

/** A journal entry: one `KEY=value` line per field, values made single-line. */
export function journalEntry(line: string, fields: LogFields = {}): string {
  const entry: [string, string][] = [
    ["MESSAGE", line],
    ["PRIORITY", "6"],
    ["SYSLOG_IDENTIFIER", "denovisor"],
  ];
  if (fields.domain !== undefined) entry.push([DOMAIN_FIELD, fields.domain]);
  if (fields.event !== undefined) entry.push(["DENOVISOR_EVENT", fields.event]);
  // The text form cannot hold a newline in a value (the binary form can; one line is
  // what an operator reads anyway).
  return entry.map(([key, value]) => `${key}=${value.replace(/[\r\n]+/g, " ")}\n`).join("");
}

/**
 * The daemon's log: journal entries under systemd (`journal` is where they go), else
 * `denovisor daemon: LINE` on stderr.
 */
export function daemonLog(
  options: { journal?: string; stderr?: (text: string) => void } = {},
): DaemonLog {
  const stderr = options.stderr ?? ((text: string) => console.error(text));
  const journal = options.journal ?? (stderrIsJournal() ? JOURNAL_SOCKET : undefined);
  let journalWorks = journal !== undefined;
  return (line, fields) => {
    if (journalWorks) {
      try {
        if (sdNotify(journalEntry(line, fields), journal)) return;
      } catch {
        // No journal after all: stderr from now on (journald still takes it).
        journalWorks = false;
      }
    }
    stderr(`denovisor daemon: ${line}`);
  };
}
