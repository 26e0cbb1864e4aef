/**
 * Root's door to a daemon that serves a socket group: `admin.sock` beside the API socket
 * (0600). The API socket itself is then the group's, where requests are confined
 * (manager/daemon/group_policy.ts); a client run as root goes through root's door when
 * there is one, so that root keeps every power whatever socket it was pointed at.
 *
 * @module
 */

import { dirname, join } from "node:path";

/** The file name of root's socket, beside the API socket. */
export const ADMIN_SOCKET_NAME = "admin.sock";

/** Root's socket beside the API socket `socket`. */
export function adminSocketOf(socket: string): string {
  return join(dirname(socket), ADMIN_SOCKET_NAME);
}

/** The socket a client should connect to: root's own when it is root and there is one. */
export function clientSocket(socket: string): string {
  if (Deno.uid() !== 0) return socket;
  const admin = adminSocketOf(socket);
  try {
    return Deno.statSync(admin).isSocket ? admin : socket;
  } catch {
    return socket;
  }
}
