/**
 * The console through the daemon: GET /v1/domains/{name}/console with
 * `Upgrade: denovisor-console` on the API socket, for callers who may not open the VMM's
 * console socket themselves (members of the daemon's socket group). After the 101 the
 * connection speaks the VMM's console protocol, so the caller goes on as if connected
 * to the console socket.
 *
 * @module
 */

import { ApiClientError } from "../manager/api_client.ts";
import { CONSOLE_PROTOCOL } from "../common/http/upgrade.ts";
import { clientSocket } from "../common/http/admin_socket.ts";
import { isErrorCode } from "../common/errors.ts";

/** The longest answer head accepted from the daemon. */
const MAX_HEAD = 16 * 1024;

/** Opens the console of `name` through the daemon at `socket`; returns it and early bytes. */
export async function consoleViaDaemon(
  socket: string,
  name: string,
): Promise<{ connection: Deno.UnixConn; early: Uint8Array }> {
  const connection = await Deno.connect({ transport: "unix", path: clientSocket(socket) });
  try {
    await connection.write(
      new TextEncoder().encode(
        `GET /v1/domains/${encodeURIComponent(name)}/console HTTP/1.1\r\nHost: denovisor\r\n` +
          `Connection: Upgrade\r\nUpgrade: ${CONSOLE_PROTOCOL}\r\n\r\n`,
      ),
    );
    let received = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    let end = -1;
    while ((end = headEnd(received)) < 0) {
      if (received.length > MAX_HEAD) throw new Error("The daemon's answer head is too long");
      const count = await connection.read(chunk);
      if (count === null) throw new Error("The daemon closed the connection without answering");
      received = concat(received, chunk.subarray(0, count));
    }
    const head = new TextDecoder().decode(received.subarray(0, end));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    if (status === 101) return { connection, early: received.slice(end) };
    // An error answer: its JSON body says why.
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    let body = received.slice(end);
    while (body.length < length) {
      const count = await connection.read(chunk);
      if (count === null) break;
      body = concat(body, chunk.subarray(0, count));
    }
    const text = new TextDecoder().decode(body);
    let error: { code?: unknown; message?: unknown } | undefined;
    try {
      error = JSON.parse(text).error;
    } catch {
      // Not our JSON error body.
    }
    connection.close();
    throw new ApiClientError(
      isErrorCode(error?.code) ? error.code : "internal",
      typeof error?.message === "string" ? error.message : `HTTP ${status}: ${text.trim()}`,
      status,
    );
  } catch (error) {
    try {
      connection.close();
    } catch {
      // Closed above.
    }
    throw error;
  }
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(a.length + b.length);
  bytes.set(a);
  bytes.set(b, a.length);
  return bytes;
}
