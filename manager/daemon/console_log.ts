/**
 * The daemon's care of a domain's log file (`<state>/logs/<name>.log`: console output and
 * the VMM's own lines, appended by the VMM): private whatever the umask, bounded (at each
 * start, and while the domain runs by the daemon's periodic `trimLog`), and gone with its
 * domain so that a new domain of the same name starts clean.
 *
 * Bounded by size, as logrotate would: past `maxBytes` the log's tail moves to `<log>.1`,
 * `.1` to `.2` and so on, and the oldest beyond `files` (the live log counted) is deleted,
 * so a chatty guest holds at most `maxBytes * files` of the host's disk (default 10 MiB x
 * 5; `denovisor daemon --log-max-size --log-max-files`).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** How large a log grows and how many files of it are kept, the live one included. */
export interface LogLimits {
  maxBytes: number;
  files: number;
}

/** 10 MiB x 5 files: 50 MiB per domain at most. */
export const DEFAULT_LOG_LIMITS: Readonly<LogLimits> = { maxBytes: 10 * 1024 * 1024, files: 5 };
/** The smallest `maxBytes`: below it a log would rotate on every few console lines. */
export const MIN_LOG_BYTES = 64 * 1024;
/** The most files of one log. */
export const MAX_LOG_FILES = 100;

let configured: LogLimits = { ...DEFAULT_LOG_LIMITS };

/**
 * The limits every log of this daemon is kept to (its --log-max-* options); throws a
 * RangeError naming the option when one is out of range.
 */
export function setLogLimits(limits: LogLimits): void {
  if (!Number.isSafeInteger(limits.maxBytes) || limits.maxBytes < MIN_LOG_BYTES) {
    throw new RangeError(`--log-max-size must be at least ${MIN_LOG_BYTES / 1024} KiB`);
  }
  if (!Number.isSafeInteger(limits.files) || limits.files < 1 || limits.files > MAX_LOG_FILES) {
    throw new RangeError(`--log-max-files must be a whole number from 1 to ${MAX_LOG_FILES}`);
  }
  configured = { ...limits };
}

/** The limits in force. */
export function logLimits(): Readonly<LogLimits> {
  return configured;
}

function limitsOf(limits: number | LogLimits | undefined): LogLimits {
  if (limits === undefined) return configured;
  return typeof limits === "number" ? { maxBytes: limits, files: configured.files } : limits;
}

/**
 * Moves `<log>.1`... one place down to make room for a new `.1`, deleting what would pass
 * `files` (with `files` 1 no copy is kept and nothing moves).
 */
async function shiftRotated(path: string, files: number): Promise<void> {
  for (let index = files - 1; index >= 1; index--) {
    const from = `${path}.${index}`;
    try {
      if (index === files - 1) await Deno.remove(from);
      else await Deno.rename(from, `${path}.${index + 1}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** Makes the log ready for a new VMM: rotated when large, present and 0600. */
export async function prepareLog(path: string, limits?: number | LogLimits): Promise<void> {
  const { maxBytes, files } = limitsOf(limits);
  try {
    const info = await Deno.stat(path);
    if (info.size > maxBytes) {
      await shiftRotated(path, files);
      if (files > 1) await Deno.rename(path, `${path}.1`);
      else await Deno.remove(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // The VMM appends to it through a shell redirection, which would create it 0644 under
  // the usual umask: a guest's console may show secrets, so it exists 0600 beforehand.
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  file.close();
  await Deno.chmod(path, 0o600);
}

/** Removes the log and every rotated copy (undefine, or a new domain taking the name). */
export async function removeLog(path: string): Promise<void> {
  const name = basename(path);
  const rotated: string[] = [];
  try {
    for await (const entry of Deno.readDir(dirname(path))) {
      const suffix = entry.name.slice(name.length);
      if (entry.name.startsWith(name) && /^\.\d+$/.test(suffix)) {
        rotated.push(join(dirname(path), entry.name));
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for (const file of [path, ...rotated]) {
    await Deno.remove(file).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/** How often the daemon looks at the logs of running domains. */
export const LOG_TRIM_INTERVAL_MS = 30_000;

/**
 * Bounds the log of a running domain: past `maxBytes`, the older copies move down
 * (`shiftRotated`), its last `maxBytes` go to `<log>.1` and the log is emptied in place. In place, because the VMM holds the file
 * open in append mode: its next write lands at the new end, where a rename would leave it
 * writing into `.1` for ever. Output written between the copy and the truncation is lost;
 * that is a few bytes at most, once per `maxBytes`.
 */
export async function trimLog(path: string, limits?: number | LogLimits): Promise<boolean> {
  const { maxBytes: rotateBytes, files } = limitsOf(limits);
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    return false; // No log yet.
  }
  if (size <= rotateBytes) return false;
  if (files === 1) {
    await Deno.truncate(path, 0);
    return true;
  }
  await shiftRotated(path, files);
  const source = await Deno.open(path, { read: true });
  try {
    await source.seek(size - rotateBytes, Deno.SeekMode.Start);
    const copy = await Deno.open(`${path}.1`, {
      write: true,
      create: true,
      truncate: true,
      mode: 0o600,
    });
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let left = rotateBytes; left > 0;) {
        const count = await source.read(buffer.subarray(0, Math.min(left, buffer.length)));
        if (count === null) break;
        for (let offset = 0; offset < count;) {
          offset += await copy.write(buffer.subarray(offset, count));
        }
        left -= count;
      }
    } finally {
      copy.close();
    }
  } finally {
    source.close();
  }
  await Deno.truncate(path, 0);
  return true;
}
