/**
 * The daemon's care of a domain's log file (`<state>/logs/<name>.log`: console output and
 * the VMM's own lines, appended by the VMM): private whatever the umask, bounded across
 * runs, and gone with its domain so that a new domain of the same name starts clean.
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
