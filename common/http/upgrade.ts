/**
 * Connection upgrades on the unix-socket server (server.ts): a handler answers with
 * `upgradeResponse(protocol, take)`, the server sends `101 Switching Protocols` and hands
 * the raw connection (and any bytes the client sent after its request) to `take`, which
 * owns it from then on. The daemon relays a domain's console this way, so that members of
 * the socket group reach consoles they cannot open themselves.
 *
 * @module
 */

/**
 * The protocol of GET /v1/domains/{name}/console: after the 101, the bytes are those of
 * the VMM's console socket (vmm/vmm_config.ts: "rw\n" or "ro\n", "ok rw\n", output).
 */
export const CONSOLE_PROTOCOL = "denovisor-console";

/** Takes over an upgraded connection; the server closes it when this settles. */
export type UpgradeHandler = (conn: Deno.Conn, early: Uint8Array) => Promise<void>;

const upgrades = new WeakMap<Response, { protocol: string; take: UpgradeHandler }>();

/** A response that switches the connection to `protocol` and gives it to `take`. */
export function upgradeResponse(protocol: string, take: UpgradeHandler): Response {
  const response = new Response(null, { status: 200 });
  upgrades.set(response, { protocol, take });
  return response;
}

/** The upgrade a handler asked for, if its response is an upgrade response. */
export function upgradeOf(
  response: Response,
): { protocol: string; take: UpgradeHandler } | undefined {
  return upgrades.get(response);
}

/** Copies `from` to `to` until either ends or fails. */
export async function relay(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  try {
    for (;;) {
      const count = await from.read(buffer);
      if (count === null) return;
      for (let offset = 0; offset < count;) {
        offset += await to.write(buffer.subarray(offset, count));
      }
    }
  } catch {
    // One side went away: the relay is over.
  }
}
