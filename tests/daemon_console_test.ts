/**
 * `denovisor console` without KVM: through a pipe that closes early (`| head`), and
 * through the daemon's relay for a socket-group member, against stand-in VMMs that speak
 * the console protocol of vmm/vmm_config.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { processStartTime } from "../manager/daemon/vmm_process.ts";
import { mainForNobody, nobodyDirs, startGroupDaemon, waitForPath } from "./nobody_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A console socket: greets, sends `output` (forever when `flood`), then closes. */
function consoleScript(path: string, output: string, flood: boolean): string {
  return `
    const listener = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
    const text = new TextEncoder().encode(${JSON.stringify(output)});
    for await (const conn of listener) {
      (async () => {
        try {
          await conn.read(new Uint8Array(16));
          await conn.write(new TextEncoder().encode("ok rw\\n"));
          do {
            for (let o = 0; o < text.length;) o += await conn.write(text.subarray(o));
            if (${flood}) await new Promise((r) => setTimeout(r, 5));
          } while (${flood});
        } catch { /* the viewer left */ }
        try { conn.close(); } catch { /* closed */ }
      })();
    }`;
}

Deno.test("console NAME | head ends quietly with status 0, without a broken-pipe error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-console-pipe-" });
  const consolePath = `${dir}/console.sock`;
  const fakeConsole = new Deno.Command(Deno.execPath(), {
    args: ["eval", consoleScript(consolePath, "guest output line\n".repeat(1000), true)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // The API: one running domain whose console is the socket above.
  const api = Deno.serve({ path: `${dir}/api.sock`, onListen() {} }, () =>
    Response.json({
      name: "w",
      uuid: "00000000-0000-4000-8000-000000000000",
      state: "running",
      consoleSocket: consolePath,
    }));
  try {
    await waitForPath(consolePath);
    const output = await new Deno.Command("bash", {
      args: [
        "-c",
        `timeout 60 "$0" run -A "$1" console w --socket "$2" </dev/null 2>"$3" | head -c 100 ` +
        `>/dev/null; echo "\${PIPESTATUS[0]}"`,
        Deno.execPath(),
        MAIN,
        `${dir}/api.sock`,
        `${dir}/stderr`,
      ],
      stdout: "piped",
    }).output();
    const stderr = await Deno.readTextFile(`${dir}/stderr`);
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "0", stderr);
    assert.doesNotMatch(stderr, /broken pipe|BrokenPipe/i);
  } finally {
    await api.shutdown();
    fakeConsole.kill("SIGKILL");
    await fakeConsole.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a socket-group member reaches a domain's console through the daemon's relay",
  ignore: Deno.uid() !== 0, // Runs the client as nobody (setpriv).
  fn: async () => {
    const { dir, denoDir } = await nobodyDirs("denovisor-console-group-");
    const run = `${dir}/run`;
    const domainDir = `${run}/domains/c0`;
    await Deno.mkdir(domainDir, { recursive: true, mode: 0o700 });
    await Deno.chmod(run, 0o750);
    await Deno.chown(run, 0, 65534);
    // A stand-in VMM left by a previous daemon: a console socket, no control socket.
    const vmm = new Deno.Command(Deno.execPath(), {
      args: ["eval", consoleScript(`${domainDir}/console.sock`, "hello from the guest\n", false)],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let daemon: Deno.ChildProcess | undefined;
    try {
      await waitForPath(`${domainDir}/console.sock`);
      await Deno.writeTextFile(
        `${domainDir}/domain.json`,
        JSON.stringify({
          definition: { name: "c0", boot: { demo: true } },
          persistent: false,
          pid: vmm.pid,
          pidStartTime: processStartTime(vmm.pid),
          startedAt: new Date().toISOString(),
        }),
      );
      daemon = await startGroupDaemon(`${dir}/state`, `${run}/api.sock`);
      const client = await mainForNobody();
      const output = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "timeout",
          "120",
          Deno.execPath(),
          "run",
          "-A",
          client.main,
          "console",
          "c0",
          "--socket",
          `${run}/api.sock`,
        ],
        env: { DENO_DIR: denoDir, HOME: denoDir },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output().finally(client.cleanup);
      const stdout = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      assert.match(stdout, /Connected to domain 'c0'/);
      assert.match(stdout, /hello from the guest/);
      assert.match(stdout, /Console of domain 'c0' closed/);
    } finally {
      daemon?.kill("SIGTERM");
      await daemon?.status;
      vmm.kill("SIGKILL");
      await vmm.status;
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});
