/** `denovisor run` as a process: restart on reset, and clean ends on signals. */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Starts `denovisor run ...args` and reads stdout until `pattern` has matched `times`. */
async function startAndWaitFor(args: string[], pattern: RegExp, times: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "run", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  // A hung VM must fail the test, not hang it: kill the child after a minute.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    while ((text.match(new RegExp(pattern, "g")) ?? []).length < times) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`output ended before ${pattern} x${times}:\n${text}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(watchdog);
    reader.releaseLock();
  }
  return { child, text };
}

kvmTest(
  "--on-reboot restart boots the guest again after a reset; SIGTERM ends it with 0",
  async () => {
    const { child, text } = await startAndWaitFor(
      ["--kernel", guest("exit_status"), "--cmdline", "reset", "--on-reboot", "restart"],
      /resetting through the i8042\r\n/,
      3,
    );
    assert.ok((text.match(/resetting through the i8042/g)?.length ?? 0) >= 3, text);
    child.kill("SIGTERM");
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    assert.equal(status.code, 0);
  },
);

kvmTest("without --on-reboot, a guest reset ends run with status 0", async () => {
  const { child, text } = await startAndWaitFor(
    ["--kernel", guest("exit_status"), "--cmdline", "reset"],
    /resetting through the i8042\r\n/,
    1,
  );
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.match(text, /resetting through the i8042/);
  assert.equal(status.code, 0);
});

kvmTest("SIGINT stops a guest that runs forever and run exits 0", async () => {
  const { child } = await startAndWaitFor(["--kernel", guest("ticks")], /tick 10\r\n/, 1);
  child.kill("SIGINT");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.equal(status.code, 0);
});

kvmTest("console input from stdin reaches the guest through the UART's interrupt", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "run", "--kernel", guest("echo")],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`output ended before ${pattern}:\n${text}`);
      text += decoder.decode(value, { stream: true });
    }
  };
  await readUntil(/echo: ready\r\n/);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("hello there\nsecond line\n"));
  await readUntil(/echo: second line\r\n/);
  await writer.write(new TextEncoder().encode("quit\n"));
  await writer.close();
  await readUntil(/echo: bye\r\n/);
  reader.releaseLock();
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.match(text, /echo: hello there\r\necho: second line\r\n/);
  assert.equal(status.code, 0);
});
