/**
 * Running the checkout's `main.ts` as user nobody (for socket-group tests). A checkout in
 * a private directory (CI's clone under a 0700 `mktemp -d`) is not readable by nobody, so
 * the program is then copied, without .git, into a world-readable temporary directory.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;

/** `main.ts` as nobody can run it, and how to remove the copy made for that (if any). */
export async function mainForNobody(): Promise<{ main: string; cleanup: () => Promise<void> }> {
  const readable = await new Deno.Command("setpriv", {
    args: ["--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", MAIN],
  }).output();
  if (readable.success) return { main: MAIN, cleanup: () => Promise.resolve() };
  const copy = await Deno.makeTempDir({ prefix: "denovisor-nobody-" });
  const tar = await new Deno.Command("bash", {
    args: [
      "-c",
      `tar --exclude=./.git -C "$0" -cf - . | tar -C "$1" -xf - && chmod -R a+rX "$1"`,
      ROOT,
      copy,
    ],
  }).output();
  if (!tar.success) {
    await Deno.remove(copy, { recursive: true });
    throw new Error(`Cannot copy the checkout for nobody: ${new TextDecoder().decode(tar.stderr)}`);
  }
  return { main: `${copy}/main.ts`, cleanup: () => Deno.remove(copy, { recursive: true }) };
}
