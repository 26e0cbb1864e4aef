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

/** A work directory nobody may enter (0755) and a DENO_DIR nobody may write to (0777). */
export async function nobodyDirs(prefix: string): Promise<{ dir: string; denoDir: string }> {
  const dir = await Deno.makeTempDir({ prefix });
  const denoDir = await Deno.makeTempDir({ prefix: "denovisor-nobody-deno-" });
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(denoDir, 0o777);
  return { dir, denoDir };
}

/** Waits until `path` exists; throws after `timeoutMs`. */
export async function waitForPath(path: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Deno.stat(path).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `denovisor daemon --socket-group nogroup` (as root, this test's user) with its
 * state in `stateDir`, its API on `socket` and `extra` arguments; resolves once the socket
 * exists. Stop it with SIGTERM.
 */
export async function startGroupDaemon(
  stateDir: string,
  socket: string,
  extra: string[] = [],
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", MAIN, "daemon", "--state-dir", stateDir, "--socket", socket],
      ...["--socket-group", "nogroup", ...extra],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForPath(socket);
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  return child;
}

/** Runs `deno eval script` as nobody in nogroup (65534), with `denoDir` as its DENO_DIR. */
export function evalAsNobody(script: string, denoDir: string): Promise<Deno.CommandOutput> {
  return new Deno.Command("setpriv", {
    args: ["--reuid=65534", "--regid=65534", "--clear-groups", Deno.execPath(), "eval", script],
    env: { DENO_DIR: denoDir, HOME: denoDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
}
