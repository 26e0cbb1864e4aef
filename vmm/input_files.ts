/**
 * Reading user-named input files with errors that say which file and what to do.
 *
 * @module
 */

import { DenovisorError } from "../common/errors.ts";
import { handedFile } from "../common/handed_descriptors.ts";
import { closeFd, errno } from "../ffi/libc.ts";
import { pread } from "../ffi/fs.ts";
import { fstat } from "../ffi/file_stat.ts";
import { SyscallError } from "../ffi/errno.ts";

/** A file named on the command line could not be read. */
export class InputFileError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Reads `path` (the `what` of the VM: kernel, initrd...) whole. */
export async function readInputFile(path: string, what: string): Promise<Uint8Array> {
  const handed = handedFile(path);
  if (handed !== undefined) return readHanded(handed, path, what);
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

/** Reads the whole regular file `fd` was handed for (the sandbox's launcher opened it), then closes it. */
function readHanded(fd: number, path: string, what: string): Uint8Array {
  try {
    const stat = fstat(fd);
    if (stat.kind !== "file") {
      throw new InputFileError(`Cannot use ${what} ${path}: not a regular file`);
    }
    const bytes = new Uint8Array(stat.size);
    let offset = 0;
    while (offset < bytes.length) {
      const n = pread(fd, bytes.subarray(offset), offset);
      if (n < 0) {
        const reason = new SyscallError("pread", errno()).message;
        throw new InputFileError(`Cannot read ${what} ${path}: ${reason}`);
      }
      if (n === 0) break;
      offset += n;
    }
    return bytes.subarray(0, offset);
  } finally {
    closeFd(fd);
  }
}
