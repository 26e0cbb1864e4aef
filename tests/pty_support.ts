/**
 * `denovisor repl` on a pseudo-terminal (python3's pty module), driven like expect(1): for
 * tests/repl_test.ts and tests/readme_output_test.ts.
 *
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** `denovisor repl` on a pseudo-terminal, driven like expect(1). */
export class PtySession {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #output = "";
  #mark = 0;
  readonly #done: Promise<void>;

  /** Runs `denovisor repl ...args`; `cwd` is where relative paths typed to it resolve. */
  constructor(args: string[], env: Record<string, string> = {}, cwd?: string) {
    this.#child = new Deno.Command("python3", {
      cwd,
      args: ["-c", PTY_DRIVER, Deno.execPath(), "run", "--allow-all", MAIN, "repl", ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: { TERM: "xterm", ...env },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const stdout = this.#child.stdout;
    this.#done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stdout) {
        this.#output += decoder.decode(chunk, { stream: true });
      }
    })();
  }

  /** Everything printed so far with escape sequences and carriage returns removed. */
  get text(): string {
    // deno-lint-ignore no-control-regex
    return this.#output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
  }

  async send(text: string): Promise<void> {
    await this.#writer.write(encoder.encode(text));
  }

  /** Waits until the output after the last match matches `pattern`. */
  async expect(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = this.text.slice(this.#mark).match(pattern);
      if (match) {
        this.#mark += match.index! + match[0].length;
        return match;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`Timed out waiting for ${pattern}; output was:\n${this.text}`);
  }

  /** Waits until anything printed so far matches `pattern` (order-free, mark unchanged). */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${pattern}; output was:\n${this.text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Raw output (escape sequences kept). */
  get raw(): string {
    return this.#output;
  }

  async close(): Promise<number> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 15_000);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#done;
    return status.code;
  }
}

/** Runs argv[1:] on a new pseudo-terminal (100 columns), copying our stdin and stdout. */
const PTY_DRIVER = `
import os, pty, sys, select, struct, fcntl, termios
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
stdin_open = True
while True:
    r, _, _ = select.select([fd] + ([0] if stdin_open else []), [], [])
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        os.write(1, data)
    if 0 in r:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            stdin_open = False
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;
