/**
 * Where Denovisor keeps its state and its API socket. Every command (daemon and clients)
 * takes `--state-dir` and `--socket`, falling back to `DENOVISOR_STATE_DIR` and
 * `DENOVISOR_SOCKET`, then to the system paths, so that several instances (and the
 * tests) run side by side without touching system paths.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";

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

/** The options every command accepts for `resolvePaths`, in parseArgs form. */
export const PATH_OPTIONS = {
  "state-dir": { type: "string" },
  socket: { type: "string" },
} as const;
