/**
 * `denovisor events [--domain NAME] [--json]`: the daemon's event feed (GET /v1/events) as
 * one line per event, for people and for scripts (`virsh event --loop`, `xl` has none).
 *
 * Built for pipes: each event is written as soon as it arrives, with one write(2) per
 * line, so `denovisor events | grep --line-buffered ...` sees it at once. When the reader
 * goes away (`| head -1`) the next write fails with EPIPE and the command ends quietly
 * with status 0, as `console` does. When the daemon goes away the stream ends and the
 * command says so and exits 3 (daemon unreachable), so a script waiting for an event can
 * tell "it happened" from "it never will".
 *
 * @module
 */

import type { DomainEvent } from "../manager/api_types.ts";
import { abortable, type DomainVerb, stringOption, type VerbContext } from "./domain_verb.ts";
import { CLIENT_EXIT, consoleIo, printable } from "./output.ts";

/** One event as a line for people: "TIME DOMAIN KIND[: DETAIL]". */
export function formatEventLine(event: DomainEvent): string {
  const detail = event.detail ? `: ${event.detail}` : "";
  return printable(`${event.time} ${event.domain} ${event.kind}${detail}`);
}

/** Whether `value` has the fields of a DomainEvent (lines from the daemon are checked). */
export function isDomainEvent(value: unknown): value is DomainEvent {
  if (typeof value !== "object" || value === null) return false;
  const event = value as Record<string, unknown>;
  return typeof event.time === "string" && typeof event.domain === "string" &&
    typeof event.kind === "string" &&
    (event.detail === undefined || typeof event.detail === "string");
}

/** Why `followEvents` ended. */
export type EventsEnd = "stream-ended" | "output-gone" | "aborted";

/**
 * Reads NDJSON events from `body` and calls `write` with each line to print, until the
 * stream ends, `write` reports the reader gone (returns false) or `signal` aborts.
 */
export async function followEvents(
  body: ReadableStream<Uint8Array>,
  options: { domain?: string; json: boolean; signal: AbortSignal },
  write: (line: string) => boolean,
): Promise<EventsEnd> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      let chunk;
      try {
        chunk = await abortable(reader.read(), options.signal);
      } catch {
        if (options.signal.aborted) return "aborted";
        // A connection cut mid-stream (the daemon was killed) is an end like any other.
        return "stream-ended";
      }
      if (chunk.done) return "stream-ended";
      buffer += chunk.value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (text === "") continue;
        let event: unknown;
        try {
          event = JSON.parse(text);
        } catch {
          continue; // Not an event line: a newer daemon may send other things.
        }
        if (!isDomainEvent(event)) continue;
        if (options.domain !== undefined && event.domain !== options.domain) continue;
        const line = options.json ? JSON.stringify(event) : formatEventLine(event);
        if (!write(line)) return "output-gone";
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const encoder = new TextEncoder();

/** Writes one line to stdout in one go; false when the reader has gone (EPIPE). */
function writeStdoutLine(line: string): boolean {
  // console.log swallows EPIPE, so a closed pipe would go unnoticed for ever.
  const bytes = encoder.encode(line + "\n");
  try {
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return false;
    throw error;
  }
}

const events: DomainVerb = {
  name: "events",
  aliases: ["event"],
  summary: "Print domain events as they happen (--domain NAME, --json for scripts)",
  help: `Usage: denovisor events [--domain NAME] [--json]

Prints the daemon's domain events as they happen, one line each, until Ctrl-C:
  TIME DOMAIN KIND[: DETAIL]
KIND is one of defined, undefined, started, paused, resumed, shutdown, rebooted,
crashed, destroyed, stopped. With --json each line is one JSON object
{"time", "domain", "kind", "detail"?} (NDJSON). Events that happened before the command
started are not shown.

Each line is written as soon as the event arrives, so a pipe sees it at once; when the
reader goes away (events | head -1) the command ends with status 0. When the daemon
stops, the command says so on stderr and exits 3.

Options:
  --domain NAME   Only the events of domain NAME (it need not exist yet)
  --json          One JSON object per line`,
  options: { domain: { type: "string" } },
  json: true,
  args: [],
  async run(context, values) {
    const domain = stringOption(values, "domain");
    const response = await context.client.request("GET", "/v1/events");
    const cli = context.io === consoleIo;
    const write = cli ? writeStdoutLine : (line: string) => {
      context.io.out(line);
      return true;
    };
    const end = await followEvents(
      response.body!,
      { domain, json: values.json === true, signal: context.signal },
      write,
    );
    return reportEnd(context, end);
  },
};

function reportEnd(context: VerbContext, end: EventsEnd): number {
  if (end === "stream-ended") {
    context.io.err(
      "events: the daemon ended the event stream (it stopped or restarted, or this " +
        "reader fell behind); run 'denovisor events' again once it is back",
    );
    return CLIENT_EXIT.UNREACHABLE;
  }
  return CLIENT_EXIT.OK;
}

/** events. */
export const EVENT_VERBS: DomainVerb[] = [events];
