/**
 * The end of a domain's log for GET /v1/domains/{name}/logs, and whether there is more
 * before it, so that `logs` can say it shows only the last lines instead of passing them
 * off as the whole log. Earlier output counts as "more" when it is in the file above the
 * lines shown, or in the rotated `<log>.1` (console_log.ts keeps logs bounded).
 *
 * @module
 */

export { LOG_EARLIER_HEADER } from "../api_types.ts";

/** The most of a log's end that is read to find its last lines. */
const WINDOW_BYTES = 1024 * 1024;

/** The last lines of a log. */
export interface LogTail {
  /** The lines, joined with "\n" (no trailing newline); "" for none. */
  text: string;
  /** How many lines `text` holds. */
  shown: number;
  /** Whether the log has output before them (in the file or in `<log>.1`). */
  earlier: boolean;
}

/** The last `lines` non-empty lines of the log at `path` (none when it is missing). */
export async function readLogTail(path: string, lines: number): Promise<LogTail> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return { text: "", shown: 0, earlier: await exists(`${path}.1`) };
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - WINDOW_BYTES);
    await file.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let offset = 0;
    while (offset < buffer.length) {
      const n = await file.read(buffer.subarray(offset));
      if (n === null) break;
      offset += n;
    }
    const all = new TextDecoder().decode(buffer.subarray(0, offset)).split("\n")
      .filter((line) => line !== "");
    const kept = lines === 0 ? [] : all.slice(-lines);
    const earlier = kept.length < all.length || start > 0 || await exists(`${path}.1`);
    return { text: kept.join("\n"), shown: kept.length, earlier };
  } finally {
    file.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
