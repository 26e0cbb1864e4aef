/**
 * `denovisor run --save-on-signal FILE` saves the VM on SIGTERM and exits 0;
 * `denovisor run --restore FILE` goes on from there: the ticks guest counts on from its
 * last tick without booting again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running `denovisor run` whose stdout a test reads as it comes. */
class RunningVm {
  readonly child: Deno.ChildProcess;
  text = "";
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  readonly #watchdog: ReturnType<typeof setTimeout>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "run", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stdout.getReader();
    // A hung VM must fail the test, not hang it.
    this.#watchdog = setTimeout(() => this.child.kill("SIGKILL"), 120_000);
  }

  /** Reads output until `pattern` has matched `times` times. */
  async readUntil(pattern: RegExp, times = 1): Promise<void> {
    while ((this.text.match(new RegExp(pattern, "g")) ?? []).length < times) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`output ended before ${pattern} x${times}:\n${this.text}`);
      this.text += this.#decoder.decode(value, { stream: true });
    }
  }

  ticks(): number[] {
    return [...this.text.matchAll(/tick (\d+)\r\n/g)].map((m) => Number(m[1]));
  }

  /** Waits for the process to end; returns its exit code and its stderr. */
  async finish(): Promise<{ code: number; stderr: string }> {
    const [{ code }, stderr] = await Promise.all([
      this.child.status,
      new Response(this.child.stderr).text(),
    ]);
    clearTimeout(this.#watchdog);
    this.#reader.releaseLock();
    await this.child.stdout.cancel();
    return { code, stderr };
  }
}

function snapshotTest(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  kvmTest(name, fn, timeoutMs);
}

snapshotTest(
  "run --save-on-signal saves on SIGTERM and run --restore counts on from the last tick",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "denovisor-run-save-" });
    try {
      const stateFile = join(dir, "ticks.state");
      const first = new RunningVm([
        "--kernel",
        guest("ticks"),
        "--memory",
        "32M",
        "--console",
        "stdio",
        "--save-on-signal",
        stateFile,
      ]);
      await first.readUntil(/tick \d+\r\n/, 3);
      first.child.kill("SIGTERM");
      const saved = await first.finish();
      assert.equal(saved.code, 0, saved.stderr);
      assert.match(saved.stderr, /saved to .*ticks\.state/);
      // Ticks printed after the last one read here only raise the bar the restore clears.
      const lastTick = Math.max(...first.ticks());
      assert.ok((await Deno.stat(`${stateFile}.mem`)).isFile);

      const second = new RunningVm(["--restore", stateFile, "--console", "stdio"]);
      await second.readUntil(/tick \d+\r\n/, 3);
      second.child.kill("SIGINT");
      const restored = await second.finish();
      assert.equal(restored.code, 0, restored.stderr);
      const ticks = second.ticks();
      assert.ok(ticks[0] > lastTick, `the count goes on from ${lastTick}: ${ticks.join(", ")}`);
      assert.ok(!second.text.includes("ticks: PIT at"), `no second boot:\n${second.text}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  240_000,
);
