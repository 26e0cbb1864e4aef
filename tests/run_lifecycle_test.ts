/** `denovisor run` as a process: restart on reset, and clean ends on signals. */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running `denovisor run` whose output a test reads as it comes. */
class RunningVm {
  readonly child: Deno.ChildProcess;
  text = "";
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  readonly #watchdog: ReturnType<typeof setTimeout>;

  constructor(args: string[], stdin: "null" | "piped" = "null") {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "run", ...args],
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stdout.getReader();
    // A hung VM must fail the test, not hang it.
    this.#watchdog = setTimeout(() => this.child.kill("SIGKILL"), 60_000);
  }

  /** Reads output until `pattern` has matched `times` times. */
  async readUntil(pattern: RegExp, times = 1): Promise<void> {
    while ((this.text.match(new RegExp(pattern, "g")) ?? []).length < times) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`output ended before ${pattern} x${times}:\n${this.text}`);
      this.text += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Waits for the process to end and releases its pipes; returns its exit code. */
  async exitCode(): Promise<number> {
    const { code } = await this.child.status;
    clearTimeout(this.#watchdog);
    this.#reader.releaseLock();
    await this.child.stdout.cancel();
    await this.child.stderr.cancel();
    return code;
  }
}

/** Starts `denovisor run ...args` and reads stdout until `pattern` has matched `times`. */
async function startAndWaitFor(args: string[], pattern: RegExp, times: number) {
  const vm = new RunningVm(args);
  await vm.readUntil(pattern, times);
  return vm;
}

kvmTest(
  "--on-reboot restart boots the guest again after a reset; SIGTERM ends it with 0",
  async () => {
    const vm = await startAndWaitFor(
      ["--kernel", guest("exit_status"), "--cmdline", "reset", "--on-reboot", "restart"],
      /resetting through the i8042\r\n/,
      3,
    );
    vm.child.kill("SIGTERM");
    assert.equal(await vm.exitCode(), 0);
  },
);

kvmTest("without --on-reboot, a guest reset ends run with status 0", async () => {
  const vm = await startAndWaitFor(
    ["--kernel", guest("exit_status"), "--cmdline", "reset"],
    /resetting through the i8042\r\n/,
    1,
  );
  assert.equal(await vm.exitCode(), 0);
});

kvmTest("SIGINT stops a guest that runs forever and run exits 0", async () => {
  const vm = await startAndWaitFor(["--kernel", guest("ticks")], /tick 10\r\n/, 1);
  vm.child.kill("SIGINT");
  assert.equal(await vm.exitCode(), 0);
});

kvmTest("console input from stdin reaches the guest through the UART's interrupt", async () => {
  const vm = new RunningVm(["--kernel", guest("echo")], "piped");
  await vm.readUntil(/echo: ready\r\n/);
  const writer = vm.child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("hello there\nsecond line\n"));
  await vm.readUntil(/echo: second line\r\n/);
  await writer.write(new TextEncoder().encode("quit\n"));
  await writer.close();
  await vm.readUntil(/echo: bye\r\n/);
  assert.match(vm.text, /echo: hello there\r\necho: second line\r\n/);
  assert.equal(await vm.exitCode(), 0);
});
