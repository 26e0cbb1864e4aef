/**
 * Errors of the pool manager, each with the API error code it maps to.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** invalid: a bad request; not_found: no such pool, volume or snapshot; conflict: the
 *  state forbids it (active, exists, is the base of...); busy: in use by a domain or
 *  another process, or another operation runs on the volume; forbidden: outside what
 *  the daemon may touch; unavailable: a host tool is missing; internal: a host tool
 *  failed. */
export type PoolErrorCode =
  | "invalid"
  | "not_found"
  | "conflict"
  | "busy"
  | "forbidden"
  | "unavailable"
  | "internal";

/** A refused pool or volume operation, with a message that says what to do. */
export class PoolError extends DenovisorError {
  declare readonly code: PoolErrorCode;

  constructor(code: PoolErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** Runs a host tool; throws an Error naming the tool and its message when it fails. */
export function runTool(command: string, args: string[]): string {
  let output: Deno.CommandOutput;
  try {
    output = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).outputSync();
  } catch (error) {
    throw new PoolError(
      "unavailable",
      `Cannot run ${command} (${(error as Error).message}); install it`,
      { cause: error },
    );
  }
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr).trim();
    throw new PoolError(
      "internal",
      `${command} ${args.join(" ")} failed: ${text || `exit ${output.code}`}`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

/** Whether anything exists at `path` (without following a final symlink). */
export function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Size, used and free bytes of the filesystem holding `path` (df). */
export function filesystemUsage(
  path: string,
): { capacity: number; used: number; available: number } {
  const lines = runTool("df", ["-B1", "--output=size,used,avail", path]).trim().split("\n");
  const [capacity, used, available] = lines[lines.length - 1].trim().split(/\s+/).map(Number);
  return { capacity, used, available };
}
