/**
 * Reading user-named input files with errors that say which file and what to do.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";

/** A file named on the command line could not be read. */
export class InputFileError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Reads `path` (the `what` of the VM: kernel, initrd...) whole. */
export async function readInputFile(path: string, what: string): Promise<Uint8Array> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new InputFileError(`Cannot use ${what} ${path}: not a regular file`);
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new InputFileError(`Cannot read ${what} ${path}: no such file`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new InputFileError(`Cannot read ${what} ${path}: permission denied`);
    }
    throw new InputFileError(`Cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}
