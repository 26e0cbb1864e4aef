/**
 * `denovisor console NAME --force` against the VMM's real console hub (vmm/console_hub.ts)
 * behind a stand-in API, no KVM: it takes the keyboard from the viewer who has it, that
 * viewer is told, and what the forcing viewer types reaches the guest's input.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ConsoleHub, TAKEN_NOTICE } from "../vmm/console_hub.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

Deno.test("console --force takes the keyboard from another viewer, who is told", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-console-force-" });
  const hub = new ConsoleHub(join(dir, "log"));
  let typed = "";
  hub.setInput((bytes) => typed += new TextDecoder().decode(bytes));
  const consoleSocket = join(dir, "console.sock");
  hub.listen(consoleSocket);
  const api = Deno.serve({ path: join(dir, "api.sock"), onListen() {} }, () =>
    Response.json({
      name: "w",
      uuid: "00000000-0000-4000-8000-000000000000",
      state: "running",
      consoleSocket,
    }));
  // The viewer who types first.
  const first = await Deno.connect({ transport: "unix", path: consoleSocket });
  let firstText = "";
  const firstDone = (async () => {
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await first.read(buffer);
        if (n === null) return;
        firstText += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } catch {
      // Closed below.
    }
  })();
  await first.write(encoder.encode("rw\n"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "console", "w", "--force", "--socket", join(dir, "api.sock")],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const until = async (test: () => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    await until(() => firstText.startsWith("ok rw\n"), "the first viewer's rw");
    await until(() => firstText.includes(TAKEN_NOTICE), "the notice to the first viewer");
    await writer.write(encoder.encode("forced keys"));
    await until(() => typed === "forced keys", "the forcing viewer's keys at the guest");
    await first.write(encoder.encode("ignored"));
    hub.write(encoder.encode("guest output\n"));
    await until(() => firstText.endsWith("guest output\n"), "guest output at the first viewer");
    assert.equal(typed, "forced keys", "the first viewer's keys no longer reach the guest");
    await writer.write(new Uint8Array([0x1d])); // Ctrl-] detaches
    await writer.close().catch(() => {});
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.match(
      out,
      /^Connected to domain 'w' \(--force: the keyboard is yours\); escape character is \^\]/,
    );
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await child.status;
    first.close();
    await firstDone;
    await hub.close();
    await api.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
