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

/** A `denovisor ...args` child whose standard output is read as it comes. */
export class StreamingCli {
  readonly child: Deno.ChildProcess;
  /** Everything read from its standard output so far. */
  text = "";
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #watchdog: ReturnType<typeof setTimeout>;
  readonly #decoder = new TextDecoder();

  /** Starts it; it is killed `timeoutMs` after the start (default 60 s). */
  constructor(args: string[], options: { stdin?: "piped" | "null"; timeoutMs?: number } = {}) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-prompt", MAIN, ...args],
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stdout.getReader();
    this.#watchdog = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // It exited meanwhile.
      }
    }, options.timeoutMs ?? 60_000);
  }

  /** Reads until the output so far matches `pattern`; throws if the output ends first. */
  async readUntil(pattern: RegExp): Promise<void> {
    while (!pattern.test(this.text)) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`output ended before ${pattern}:\n${this.text}`);
      this.text += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Waits for it to exit (the watchdog still applies) and drops the rest of its output. */
  async finish(): Promise<Deno.CommandStatus> {
    this.#reader.releaseLock();
    const status = await this.child.status;
    clearTimeout(this.#watchdog);
    await this.child.stdout.cancel();
    await this.child.stderr.cancel();
    return status;
  }
}
