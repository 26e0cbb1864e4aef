/**
 * Reading a small text file a user names (a definition file) with a size limit, so that a
 * huge file or an endless one (/dev/zero) is refused with a clear message instead of
 * taking the CLI to gigabytes.
 *
 * @module
 */

/** A named text file that is too large or cannot be read. */
export class TextInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TextInputError";
  }
}

const CHUNK = 64 * 1024;

/**
 * Reads `path` as UTF-8 text (a leading byte-order mark dropped), refusing more than
 * `maxBytes`. It reads at most `maxBytes + 1` bytes whatever the file is, so a pipe or a
 * device is refused when it overflows, never read whole.
 */
export async function readTextInput(path: string, maxBytes: number): Promise<string> {
  let file: Deno.FsFile;
  try {
    if ((await Deno.stat(path)).isDirectory) throw new TextInputError(`${path} is a directory`);
    file = await Deno.open(path);
  } catch (error) {
    if (error instanceof TextInputError) throw error;
    if (error instanceof Deno.errors.NotFound) throw new TextInputError("no such file");
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new TextInputError("permission denied");
    }
    throw new TextInputError((error as Error).message);
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = new Uint8Array(Math.min(CHUNK, maxBytes + 1 - total));
      const n = await file.read(chunk);
      if (n === null) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        throw new TextInputError(`larger than ${maxBytes} bytes, the most such a file may have`);
      }
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return new TextDecoder().decode(bytes);
  } finally {
    file.close();
  }
}
