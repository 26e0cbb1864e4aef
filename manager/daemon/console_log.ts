/**
 * The daemon's care of a domain's log file (`<state>/logs/<name>.log`: console output and
 * the VMM's own lines, appended by the VMM): private whatever the umask, bounded (at each
 * start, and while the domain runs by the daemon's periodic `trimLog`), and gone with its
 * domain so that a new domain of the same name starts clean.
 *
 * @module
 */

/**
 * A log larger than this when its domain starts is moved to `<log>.1` (replacing the
 * previous one): at most twice this much per domain, counted at starts.
 */
export const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

/** Makes the log ready for a new VMM: rotated when large, present and 0600. */
export async function prepareLog(path: string, rotateBytes = LOG_ROTATE_BYTES): Promise<void> {
  try {
    const info = await Deno.stat(path);
    if (info.size > rotateBytes) await Deno.rename(path, `${path}.1`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // The VMM appends to it through a shell redirection, which would create it 0644 under
  // the usual umask: a guest's console may show secrets, so it exists 0600 beforehand.
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  file.close();
  await Deno.chmod(path, 0o600);
}

/** Removes the log and its rotated copy (undefine, or a new domain taking the name). */
export async function removeLog(path: string): Promise<void> {
  for (const file of [path, `${path}.1`]) {
    await Deno.remove(file).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/** How often the daemon looks at the logs of running domains. */
export const LOG_TRIM_INTERVAL_MS = 30_000;

/**
 * Bounds the log of a running domain: past `rotateBytes`, its last `rotateBytes` go to
 * `<log>.1` and the log is emptied in place. In place, because the VMM holds the file
 * open in append mode: its next write lands at the new end, where a rename would leave it
 * writing into `.1` for ever. Output written between the copy and the truncation is lost;
 * that is a few bytes at most, once per 16 MiB.
 */
export async function trimLog(path: string, rotateBytes = LOG_ROTATE_BYTES): Promise<boolean> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    return false; // No log yet.
  }
  if (size <= rotateBytes) return false;
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
