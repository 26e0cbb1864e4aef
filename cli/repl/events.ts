/**
 * The REPL's live view of GET /v1/events: each domain event becomes one line such as
 * "* domain web1 crashed: VMM killed by SIGKILL", printed as it happens. The stream is
 * reopened after the daemon restarts.
 *
 * @module
 */

import type { ApiClient } from "../../manager/api_client.ts";
import type { DomainEvent } from "../../manager/api_types.ts";
import { printable } from "../output.ts";

/** How long to wait before reconnecting to a daemon that went away. */
const RECONNECT_MS = 2000;

/** One event as a line for people. */
export function formatEvent(event: DomainEvent): string {
  const detail = event.detail ? `: ${event.detail}` : "";
  return printable(`* domain ${event.domain} ${event.kind}${detail}`);
}

/**
 * Follows the event stream until `signal` aborts, calling `onEvent` for each event and
 * `onNotice` when the stream is lost or back.
 */
export async function watchEvents(
  client: ApiClient,
  signal: AbortSignal,
  onEvent: (event: DomainEvent) => void,
  onNotice: (text: string) => void,
): Promise<void> {
  let lost = false;
  let connected = false;
  while (!signal.aborted) {
    try {
      const response = await client.request("GET", "/v1/events");
      if (lost) onNotice("* connected to the daemon");
      lost = false;
      connected = true;
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      const cancel = () => reader.cancel().catch(() => {});
      signal.addEventListener("abort", cancel, { once: true });
      let buffer = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let newline;
          while ((newline = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            if (line === "") continue;
            try {
              onEvent(JSON.parse(line) as DomainEvent);
            } catch {
              // Not an event line: skip it.
            }
          }
        }
      } finally {
        signal.removeEventListener("abort", cancel);
      }
    } catch {
      // Unreachable or dropped: retried below.
    }
    if (signal.aborted) break;
    if (!lost && connected) onNotice("* lost the daemon's event stream; reconnecting");
    lost = true;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}
