/**
 * The VMM's side of a domain's serial console: guest output goes to the log file
 * (appended), to a ring of the last 64 KiB, and to every client attached to
 * `console.sock`; input comes from the one read-write client. The socket protocol is in
 * vmm/vmm_config.ts: the client sends "rw\n" or "ro\n" (or "rw!\n" to take the keyboard
 * from the viewer who has it), the VMM answers "ok rw\n" or "ok ro\n", replays the ring,
 * then streams live output.
 *
 * Nothing here blocks the event loop: every sink is an `OutputQueue`, so a stalled
 * client loses output (counted) instead of stalling the guest, and a vanished client is
 * dropped at its first failed write.
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";
import { OutputQueue } from "../devices/console/output_queue.ts";

/** How much output a newly attached client gets replayed. */
export const REPLAY_BYTES = 64 * 1024;
/** Most output held for one slow client before its output is dropped. */
const CLIENT_MAX_PENDING = 1024 * 1024;
/** The hello line ("rw\n" or "ro\n") may not be longer than this. */
const MAX_HELLO = 16;
/** A client that sends no hello line within this time is disconnected. */
const HELLO_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();
/** What a viewer whose keyboard was taken by `console --force` sees (not logged). */
export const TAKEN_NOTICE =
  "\r\n[denovisor: another viewer took the keyboard (console --force); read-only now]\r\n";

/** The last `capacity` bytes written, in order. */
export class ByteRing {
  readonly #bytes: Uint8Array;
  #end = 0;
  #full = false;

  constructor(capacity: number) {
    this.#bytes = new Uint8Array(capacity);
  }

  push(data: Uint8Array): void {
    const capacity = this.#bytes.length;
    if (data.length >= capacity) {
      this.#bytes.set(data.subarray(data.length - capacity));
      this.#end = 0;
      this.#full = true;
      return;
    }
    const first = Math.min(data.length, capacity - this.#end);
    this.#bytes.set(data.subarray(0, first), this.#end);
    this.#bytes.set(data.subarray(first), 0);
    const end = this.#end + data.length;
    if (end >= capacity) this.#full = true;
    this.#end = end % capacity;
  }

  /** A copy of the held bytes, oldest first. */
  snapshot(): Uint8Array {
    if (!this.#full) return this.#bytes.slice(0, this.#end);
    const out = new Uint8Array(this.#bytes.length);
    out.set(this.#bytes.subarray(this.#end));
    out.set(this.#bytes.subarray(0, this.#end), this.#bytes.length - this.#end);
    return out;
  }
}

interface Client {
  conn: Deno.Conn;
  queue: OutputQueue;
  mode: "rw" | "ro";
}

/** The console multiplexer: a `ConsoleOutput` for the UART, and the console socket. */
export class ConsoleHub implements ConsoleOutput {
  readonly #ring = new ByteRing(REPLAY_BYTES);
  readonly #logFile: Deno.FsFile;
  readonly #log: OutputQueue;
  readonly #clients = new Set<Client>();
  #readWrite: Client | undefined;
  #input: (bytes: Uint8Array) => void = () => {};
  #listener: Deno.Listener | undefined;
  #atLineStart = true;
  #closed = false;

  /** Opens (creates, mode 0600) the log file for appending. */
  constructor(logFile: string) {
    this.#logFile = Deno.openSync(logFile, { append: true, create: true, mode: 0o600 });
    // A full disk loses the output of that moment only: the log resumes once there is room.
    this.#log = new OutputQueue(this.#logFile, { transient: diskFull });
  }

  /** Where the read-write client's bytes go (the current machine's console input). */
  setInput(input: (bytes: Uint8Array) => void): void {
    this.#input = input;
  }

  /** Attached clients, for status and tests. */
  get clients(): { readWrite: boolean; readOnly: number } {
    return {
      readWrite: this.#readWrite !== undefined,
      readOnly: this.#clients.size - (this.#readWrite ? 1 : 0),
    };
  }

  /** Guest output: to the log, the ring and every client. */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#atLineStart = bytes[bytes.length - 1] === 0x0a;
    this.#log.push(bytes);
    this.#ring.push(bytes);
    for (const client of this.#clients) {
      client.queue.push(bytes);
      if (client.queue.stats.error) this.#drop(client);
    }
  }

  /** One line of the VMM's own, to the log file only (on a line of its own). */
  log(message: string): void {
    const prefix = this.#atLineStart ? "" : "\n";
    this.#atLineStart = true;
    this.#log.push(
      encoder.encode(`${prefix}[${new Date().toISOString()}] denovisor vmm: ${message}\n`),
    );
  }

  /** Listens on `path` (a stale socket file is replaced), mode 0600. */
  listen(path: string): void {
    removeIfExists(path);
    const listener = Deno.listen({ transport: "unix", path });
    Deno.chmodSync(path, 0o600);
    this.#listener = listener;
    void this.#accept(listener);
  }

  /** Writes out pending output (log and clients), within `timeoutMs`. */
  async flush(timeoutMs = 2000): Promise<void> {
    const all = [this.#log, ...[...this.#clients].map((c) => c.queue)].map((q) => q.flush());
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(all),
      new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  /** Flushes, disconnects every client, stops listening, closes the log. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    for (const client of [...this.#clients]) this.#drop(client);
    await this.#log.flush();
    try {
      this.#logFile.close();
    } catch {
      // Already closed.
    }
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) void this.#serve(conn);
    } catch {
      // The listener was closed: no more clients.
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    let client: Client | undefined;
    try {
      const hello = await readHello(conn);
      if (hello === undefined) return;
      const { line, rest } = hello;
      if (line !== "rw" && line !== "ro" && line !== "rw!") {
        await conn.write(
          encoder.encode(`error: send "rw" or "ro" on the first line, not '${line}'\n`),
        );
        return;
      }
      if (this.#closed) return;
      const forced = line === "rw!";
      const mode = forced || (line === "rw" && this.#readWrite === undefined) ? "rw" : "ro";
      // console --force: the viewer who typed watches from now on, and is told why.
      if (forced && this.#readWrite) this.#demote(this.#readWrite);
      client = {
        conn,
        mode,
        queue: new OutputQueue(conn, { maxPendingBytes: CLIENT_MAX_PENDING }),
      };
      // Answer and replay in one synchronous step, so no output falls between the two.
      client.queue.push(encoder.encode(`ok ${mode}\n`));
      client.queue.push(this.#ring.snapshot());
      this.#clients.add(client);
      if (mode === "rw") this.#readWrite = client;
      if (mode === "rw" && rest.length > 0) this.#input(rest);
      const buffer = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        // Read-only clients' bytes are read (so they cannot stall the socket) and dropped.
        if (client.mode === "rw" && !this.#closed) this.#input(buffer.slice(0, n));
      }
    } catch {
      // A reset connection ends this client like a clean disconnect.
    } finally {
      if (client) this.#drop(client);
      else closeQuietly(conn);
    }
  }

  #demote(client: Client): void {
    client.mode = "ro";
    this.#readWrite = undefined;
    client.queue.push(encoder.encode(TAKEN_NOTICE));
    if (client.queue.stats.error) this.#drop(client);
  }

  #drop(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#readWrite === client) this.#readWrite = undefined;
    // Let what was queued go out before closing (bounded by the queue's own limit).
    void client.queue.flush().finally(() => closeQuietly(client.conn));
  }
}

/** Reads the first line; undefined when the client went away, sent too much or too late. */
async function readHello(
  conn: Deno.Conn,
): Promise<{ line: string; rest: Uint8Array } | undefined> {
  let head = new Uint8Array(0);
  const buffer = new Uint8Array(256);
  const timer = setTimeout(() => closeQuietly(conn), HELLO_TIMEOUT_MS);
  try {
    for (;;) {
      const newline = head.indexOf(0x0a);
      if (newline >= 0) {
        const line = new TextDecoder().decode(head.subarray(0, newline)).trim();
        return { line, rest: head.slice(newline + 1) };
      }
      if (head.length > MAX_HELLO) {
        await conn.write(encoder.encode('error: send "rw" or "ro" on the first line\n'));
        return undefined;
      }
      const n = await conn.read(buffer);
      if (n === null) return undefined;
      const joined = new Uint8Array(head.length + n);
      joined.set(head);
      joined.set(buffer.subarray(0, n), head.length);
      head = joined;
    }
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Removes `path` if it exists (a socket left by a VMM that died). */
export function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Whether a write failed for want of space (ENOSPC, or EDQUOT for a user's quota). */
function diskFull(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "ENOSPC" || code === "EDQUOT";
}
