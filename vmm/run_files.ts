/**
 * The files of a domain's run directory, as vmm/vmm_config.ts names them.
 *
 * @module
 */

import { join } from "node:path";

/** Paths of the control socket, console socket, pid file and end record under `runDir`. */
export function runFiles(runDir: string): {
  controlSocket: string;
  consoleSocket: string;
  pidFile: string;
  endFile: string;
} {
  return {
    controlSocket: join(runDir, "vmm.sock"),
    consoleSocket: join(runDir, "console.sock"),
    pidFile: join(runDir, "vmm.pid"),
    endFile: join(runDir, "end.json"),
  };
}
