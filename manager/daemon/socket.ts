/**
 * The API socket, made without a window in which anyone else could connect: it is bound
 * inside a fresh 0700 directory, given its final mode (0600, or 0660 for a socket group)
 * and only then renamed into place.
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  serveUnix,
  type UnixHttpServer,
  type UnixServerOptions,
} from "../../common/http/server.ts";

/** Serves `handler` on the unix socket `path`; resolves once it is in place. */
export async function listenPrivately(
  path: string,
  gid: number | undefined,
  handler: (request: Request) => Response | Promise<Response>,
  options: Omit<UnixServerOptions, "path"> = {},
): Promise<UnixHttpServer> {
  const staging = await Deno.makeTempDir({ dir: dirname(path), prefix: ".api-socket-" });
  const temp = join(staging, "api.sock");
  try {
    // Our own accept loop (common/http/server.ts): header and idle timeouts, a connection
    // cap and EMFILE as back-pressure, none of which Deno.serve offers.
    const server = serveUnix({ ...options, path: temp }, handler);
    try {
      await Deno.chmod(temp, gid === undefined ? 0o600 : 0o660);
      if (gid !== undefined) await Deno.chown(temp, null, gid);
      // The lock is ours, so a socket left at `path` is a dead daemon's: replace it.
      await Deno.rename(temp, path);
    } catch (error) {
      await server.shutdown();
      throw error;
    }
    return server;
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** The numeric id of group `name` (or a number as it is). */
export async function resolveGroup(name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const { success, stdout } = await new Deno.Command("getent", {
    args: ["group", name],
    stdout: "piped",
    stderr: "null",
  }).output();
  const gid = Number(new TextDecoder().decode(stdout).split(":")[2]);
  if (!success || !Number.isInteger(gid)) {
    throw new Error(
      `--socket-group: no group '${name}' on this host; create it with 'groupadd ${name}'`,
    );
  }
  return gid;
}
