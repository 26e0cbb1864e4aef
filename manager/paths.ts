/**
 * Where Denovisor keeps its state and its API socket. Every command (daemon and clients)
 * takes `--state-dir` and `--socket`, falling back to `DENOVISOR_STATE_DIR` and
 * `DENOVISOR_SOCKET`, then to the system paths, so that several instances (and the
 * tests) run side by side without touching system paths.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { adminSocketOf } from "../common/http/admin_socket.ts";

export const DEFAULT_STATE_DIR = "/var/lib/denovisor";
export const DEFAULT_SOCKET = "/run/denovisor/api.sock";

/** The directories and socket of one Denovisor instance. */
export interface DenovisorPaths {
  /** Persistent state: domain and pool definitions, logs. */
  stateDir: string;
  /** The daemon's API socket. */
  socket: string;
  /** Runtime state (lost at reboot): one directory per running domain, beside the socket. */
  runDir: string;
}

/** Resolves the paths from options, then the environment, then the defaults. */
export function resolvePaths(
  options: { stateDir?: string; socket?: string } = {},
): DenovisorPaths {
  const stateDir = resolve(
    options.stateDir ?? Deno.env.get("DENOVISOR_STATE_DIR") ?? DEFAULT_STATE_DIR,
  );
  const socket = resolve(options.socket ?? Deno.env.get("DENOVISOR_SOCKET") ?? DEFAULT_SOCKET);
  return { stateDir, socket, runDir: dirname(socket) };
}

/** The runtime directory of one running domain (vmm.sock, console.sock, vmm.pid, end.json). */
export function domainRunDir(paths: DenovisorPaths, name: string): string {
  return join(paths.runDir, "domains", name);
}

/** Root's socket when the daemon serves a socket group (common/http/admin_socket.ts). */
export function adminSocket(paths: Pick<DenovisorPaths, "socket">): string {
  return adminSocketOf(paths.socket);
}

/** The longest path a unix socket may have (sun_path holds 108 bytes with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The longest socket file name in a domain's run directory. */
const LONGEST_DOMAIN_SOCKET = "console.sock";

/**
 * Why domain `name` could not run under `paths` (its VMM's sockets would have paths too
 * long for a unix socket), or undefined when it can. Checked when a domain is defined, so
 * that a name that cannot start is refused then rather than at its first start.
 */
export function domainNameTooLong(paths: DenovisorPaths, name: string): string | undefined {
  const encoder = new TextEncoder();
  const socket = join(domainRunDir(paths, name), LONGEST_DOMAIN_SOCKET);
  const bytes = encoder.encode(socket).byteLength;
  if (bytes <= MAX_SOCKET_PATH_BYTES) return undefined;
  const room = MAX_SOCKET_PATH_BYTES - (bytes - encoder.encode(name).byteLength);
  return `name: '${name}' is too long for this daemon: its console socket ${socket} would ` +
    `be ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES} a unix socket path may have; ` +
    (room > 0
      ? `choose a name of at most ${room} bytes`
      : `give the daemon a shorter --socket path`);
}

/** The options every command accepts for `resolvePaths`, in parseArgs form. */
export const PATH_OPTIONS = {
  "state-dir": { type: "string" },
  socket: { type: "string" },
} as const;
