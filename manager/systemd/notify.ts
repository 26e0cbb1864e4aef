/**
 * sd_notify(3) for `denovisor daemon` under systemd (Type=notify): one datagram per state
 * change to the unix socket named by NOTIFY_SOCKET, a path or an abstract name ('@'
 * prefix). Deno's datagram unix sockets are behind --unstable-net and know no abstract
 * names, so this sends with socket(2)/sendto(2) through ffi/socket.ts.
 *
 * Every function is a no-op returning false when NOTIFY_SOCKET is unset (not under
 * systemd). Processes the daemon spawns (the VMMs) should not inherit NOTIFY_SOCKET:
 * remove it from their environment.
 *
 * @module
 */

import { closeFd, errno } from "../../ffi/libc.ts";
import {
  AF_UNIX,
  sendto,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  socket as openSocket,
} from "../../ffi/socket.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { DenovisorError } from "../../common/errors.ts";

/** The environment variable systemd names its notification socket in. */
export const NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET";

/** sizeof(sun_path) in struct sockaddr_un. */
const SUN_PATH_SIZE = 108;

/** A NOTIFY_SOCKET value that cannot be used, or a socket that refused the message. */
export class NotifyError extends DenovisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

/** struct sockaddr_un for a path or an '@'-prefixed abstract name, and its length. */
export function unixAddress(address: string): { bytes: Uint8Array<ArrayBuffer>; length: number } {
  if (!address.startsWith("/") && !address.startsWith("@")) {
    throw new NotifyError(
      `${NOTIFY_SOCKET_ENV}=${address} is neither a socket path nor an @abstract name; unset it or fix the unit`,
    );
  }
  const name = new TextEncoder().encode(address);
  // A path needs its terminating NUL inside sun_path; an abstract name does not.
  const abstract = address.startsWith("@");
  if (name.length + (abstract ? 0 : 1) > SUN_PATH_SIZE) {
    throw new NotifyError(`${NOTIFY_SOCKET_ENV}=${address} is longer than a unix socket address`);
  }
  const bytes = new Uint8Array(2 + SUN_PATH_SIZE);
  new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
  bytes.set(name, 2);
  if (abstract) bytes[2] = 0;
  return { bytes, length: 2 + name.length + (abstract ? 0 : 1) };
}

/**
 * Sends `state` ("READY=1", "STATUS=...", newline-separated assignments) to the socket in
 * NOTIFY_SOCKET (or `socket`). Returns false when there is no socket to tell; throws
 * `NotifyError` when the socket is malformed or refuses the message.
 */
export function sdNotify(state: string, socket = Deno.env.get(NOTIFY_SOCKET_ENV)): boolean {
  if (socket === undefined || socket === "") return false;
  const { bytes, length } = unixAddress(socket);
  const fd = openSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC);
  if (fd < 0) {
    throw new NotifyError("Cannot create a socket to notify systemd", {
      cause: new SyscallError("socket(AF_UNIX)", errno()),
    });
  }
  try {
    const message = new TextEncoder().encode(state);
    const sent = sendto(fd, message, bytes, length);
    if (sent < 0) {
      const error = new SyscallError(`sendto(${socket})`, errno());
      throw new NotifyError(`Cannot notify systemd at ${socket}: ${error.message}`, {
        cause: error,
      });
    }
    return true;
  } finally {
    closeFd(fd);
  }
}

/** Tells systemd the daemon is ready (its API socket listens): READY=1 with a status. */
export function notifyReady(status = "Serving the API"): boolean {
  return sdNotify(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${Deno.pid}`);
}

/** Sets the status line `systemctl status denovisor` shows. */
export function notifyStatus(text: string): boolean {
  return sdNotify(`STATUS=${oneLine(text)}`);
}

/** Tells systemd the daemon is shutting down (STOPPING=1). */
export function notifyStopping(status = "Stopping; domains keep running"): boolean {
  return sdNotify(`STOPPING=1\nSTATUS=${oneLine(status)}`);
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}
