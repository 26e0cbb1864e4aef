/**
 * The daemon as a service: readiness on NOTIFY_SOCKET, one daemon per state directory,
 * the OpenAPI description, and the optional socket group.
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { evalAsNobody, nobodyDirs, startGroupDaemon } from "./nobody_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("daemon: sends READY=1 on NOTIFY_SOCKET once its socket answers", async () => {
  const dir = await Deno.makeTempDir();
  const notifySocket = `${dir}/notify.sock`;
  // Datagram unix sockets need --unstable-net: a small listener process prints the first one.
  const listener = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--unstable-net",
      `const l = Deno.listenDatagram({ transport: "unixpacket", path: ${
        JSON.stringify(notifySocket)
      } });
       console.log("listening");
       const [data] = await l.receive();
       console.log(new TextDecoder().decode(data).replaceAll("\\n", " "));`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = listener.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("listening")) text += (await lines.read()).value ?? "";
  let daemon: TestDaemon | undefined;
  try {
    daemon = await TestDaemon.start({ NOTIFY_SOCKET: notifySocket });
    while (!text.includes("READY=1")) {
      const { value, done } = await lines.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /READY=1/);
    assert.match(text, /STATUS=0 domains running/);
  } finally {
    await daemon?.cleanup();
    try {
      listener.kill();
    } catch {
      // Exited after its datagram.
    }
    await lines.cancel().catch(() => {});
    await listener.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon: a second daemon on the same state directory is refused with the owner's pid", async () => {
  const daemon = await TestDaemon.start();
  try {
    const second = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "daemon",
        "--state-dir",
        daemon.dir,
        "--socket",
        `${daemon.dir}/b.sock`,
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    assert.equal(second.code, 1);
    assert.equal(
      new TextDecoder().decode(second.stderr).trim(),
      `denovisor: Another daemon (pid ${daemon.child!.pid}) owns ${daemon.dir}; stop it first ` +
        `(systemctl stop denovisor) or give this one another --state-dir`,
    );
    // The first one still serves.
    assert.equal((await daemon.client.get<{ stateDir: string }>("/v1/host")).stateDir, daemon.dir);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: serves its OpenAPI description", async () => {
  const daemon = await TestDaemon.start();
  try {
    const document = await daemon.client.get<{ openapi: string; paths: Record<string, unknown> }>(
      "/v1/openapi.json",
    );
    assert.equal(document.openapi, "3.1.0");
    assert.ok("/v1/domains/{name}/{action}" in document.paths);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: --socket-group makes the socket 0660 for that group, whose members get in", async () => {
  const { dir, denoDir } = await nobodyDirs("denovisor-service-group-");
  const socket = `${dir}/run/api.sock`;
  const child = await startGroupDaemon(`${dir}/state`, socket);
  try {
    const info = await Deno.stat(socket);
    assert.equal(info.mode! & 0o777, 0o660);
    assert.equal(info.gid, 65534);
    const runDir = await Deno.stat(`${dir}/run`);
    assert.equal(runDir.mode! & 0o777, 0o750);
    // nobody in group nogroup (65534) may now use the API.
    const script = `const c = Deno.createHttpClient({ proxy: { transport: "unix", path: ${
      JSON.stringify(socket)
    } } }); const r = await fetch("http://d/v1/host", { client: c }); console.log(r.status);`;
    const output = await evalAsNobody(script, denoDir);
    assert.equal(
      new TextDecoder().decode(output.stdout).trim(),
      "200",
      new TextDecoder().decode(output.stderr),
    );
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(denoDir, { recursive: true });
  }
});
