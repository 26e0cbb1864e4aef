/**
 * Runs the `denovisor` CLI as a child process, the way users run it.
 *
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const GUESTS = new URL("../guests/build/", import.meta.url).pathname;

/** A finished CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Path of a built test guest (guests/build.sh builds them). */
export function guest(name: string): string {
  return `${GUESTS}${name}.elf`;
}

/** Runs `denovisor ...args` with stdin closed; kills it after `timeoutMs`. */
export async function denovisor(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}
