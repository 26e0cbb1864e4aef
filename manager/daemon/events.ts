/**
 * The domain event feed behind GET /v1/events: every state change becomes one JSON line
 * sent to every connected client (application/x-ndjson). A slow client does not slow the
 * daemon: its queue is bounded and it is dropped when the queue overflows.
 *
 * @module
 */

import type { DomainEvent, DomainEventKind } from "../api_types.ts";

/** Lines a client may fall behind before it is disconnected. */
const MAX_QUEUED_LINES = 1000;

/** Fans domain events out to the connected event streams. */
export class EventHub {
  readonly #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  readonly #encoder = new TextEncoder();
  readonly #listeners = new Set<(event: DomainEvent) => void>();

  /** Publishes one event. */
  emit(domain: string, kind: DomainEventKind, detail?: string): DomainEvent {
    const event: DomainEvent = { time: new Date().toISOString(), domain, kind };
    if (detail !== undefined) event.detail = detail;
    const line = this.#encoder.encode(JSON.stringify(event) + "\n");
    for (const client of this.#clients) {
      if ((client.desiredSize ?? 0) <= 0) {
        this.#drop(client, "the client fell too far behind");
        continue;
      }
      try {
        client.enqueue(line);
      } catch {
        this.#clients.delete(client);
      }
    }
    for (const listener of this.#listeners) listener(event);
    return event;
  }

  /** Calls `listener` for every event (in-process observers, e.g. the daemon's log). */
  listen(listener: (event: DomainEvent) => void): void {
    this.#listeners.add(listener);
  }

  /** A new NDJSON stream of the events from now on. */
  stream(): ReadableStream<Uint8Array> {
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.#clients.add(controller);
      },
      cancel: () => {
        if (self) this.#clients.delete(self);
      },
    }, { highWaterMark: MAX_QUEUED_LINES });
  }

  /** Ends every stream (the daemon is stopping). */
  closeAll(): void {
    for (const client of this.#clients) {
      try {
        client.close();
      } catch {
        // Already closed by its reader.
      }
    }
    this.#clients.clear();
  }

  /** How many clients are connected. */
  get clients(): number {
    return this.#clients.size;
  }

  #drop(client: ReadableStreamDefaultController<Uint8Array>, reason: string): void {
    this.#clients.delete(client);
    try {
      client.error(new Error(`Event stream closed: ${reason}`));
    } catch {
      // Already closed.
    }
  }
}
