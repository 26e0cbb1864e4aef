/**
 * A minimal QMP client for the benchmarks that drive QEMU (its JSON monitor on a unix
 * socket): the greeting, `qmp_capabilities`, then one command at a time; events are
 * skipped.
 *
 * @module
 */

import { CouldNotMeasureError } from "./_support.ts";

export class Qmp {
  readonly #conn: Deno.UnixConn;
  readonly #lines: AsyncIterator<string>;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#lines = conn.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
      new LineSplitter(),
    )[Symbol.asyncIterator]();
  }

  /** Connects to `path` (retrying while QEMU starts) and leaves capabilities negotiation. */
  static async connect(path: string, timeoutMs = 30_000): Promise<Qmp> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const qmp = new Qmp(await Deno.connect({ transport: "unix", path }));
        await qmp.#next(); // the greeting
        await qmp.execute("qmp_capabilities");
        return qmp;
      } catch (error) {
        if (performance.now() > deadline) {
          throw new CouldNotMeasureError(`QMP at ${path}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  /** Runs `command` and returns its `return` value; throws on an `error` answer. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const text = JSON.stringify(
      args ? { execute: command, arguments: args } : { execute: command },
    );
    await this.#conn.write(new TextEncoder().encode(`${text}\n`));
    for (;;) {
      const answer = await this.#next();
      if ("event" in answer) continue;
      if ("error" in answer) {
        throw new CouldNotMeasureError(`QMP ${command}: ${JSON.stringify(answer.error)}`);
      }
      return answer.return;
    }
  }

  async #next(): Promise<Record<string, unknown>> {
    const { value, done } = await this.#lines.next();
    if (done) throw new CouldNotMeasureError("QMP connection closed");
    return JSON.parse(value);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** Splits a text stream into lines. */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) if (line.trim()) controller.enqueue(line);
      },
    });
  }
}
