import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import { validateVmmConfig, VmmConfigError } from "../config_parse.ts";
import { parseMigrateSendRequest, unixChannel } from "./vmm_endpoint.ts";
import { Command } from "./protocol.ts";
import { FrameReader, FrameWriter } from "./frames.ts";

Deno.test("parseMigrateSendRequest() fills the defaults and refuses what is not its shape", () => {
  assert.deepEqual(parseMigrateSendRequest({ socket: "/run/d/migrate.sock", domain: "web1" }), {
    socket: "/run/d/migrate.sock",
    domain: "web1",
    offline: false,
    maxDowntimeMs: 100,
    bandwidth: 0,
    timeoutMs: 3_600_000,
  });
  const bad = (body: unknown, text: string) =>
    assert.throws(
      () => parseMigrateSendRequest(body),
      (e) => e instanceof ApiError && e.message.includes(text),
    );
  bad([], "must be an object");
  bad({ socket: "rel", domain: "x" }, "socket");
  bad({ socket: "/s", domain: "x", extra: 1 }, "extra: unknown field");
  bad({ socket: "/s", domain: "x", maxDowntimeMs: -1 }, "maxDowntimeMs");
  bad({ socket: "/s", domain: "x", bandwidth: 1.5 }, "bandwidth");
  bad({ socket: "/s", domain: "x", offline: "yes" }, "offline");
});

Deno.test("a VMM config takes migrateIn with an absolute socket, never beside a restore", () => {
  const base = {
    name: "t",
    uuid: "0b6f2a5e-6c1d-4a57-9d43-3f1c2b7a9e10",
    vcpus: 1,
    memoryBytes: 64 * 1024 * 1024,
    boot: { kind: "demo" },
    disks: [],
    nics: [],
    balloon: false,
    onReboot: "destroy",
    logFile: "/run/t/console.log",
    runDir: "/run/t",
  };
  const config = validateVmmConfig({ ...base, migrateIn: { socket: "/run/t/migrate.sock" } });
  assert.deepEqual(config.migrateIn, { socket: "/run/t/migrate.sock" });
  assert.throws(
    () =>
      validateVmmConfig({
        ...base,
        migrateIn: { socket: "/run/t/m.sock" },
        restore: { stateFile: "/s", paused: false },
      }),
    VmmConfigError,
  );
  assert.throws(() => validateVmmConfig({ ...base, migrateIn: { socket: 3 } }), VmmConfigError);
});

Deno.test("unixChannel() carries frames both ways over the daemon's relay socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mig-unix-" });
  const path = join(dir, "migrate.sock");
  const listener = Deno.listen({ transport: "unix", path });
  try {
    const accepted = listener.accept();
    const channel = await unixChannel(path);
    const conn = await accepted;
    const daemon = {
      reader: new FrameReader(conn.readable),
      writer: new FrameWriter(async (bytes) => {
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      }),
    };
    const big = new Uint8Array(3 * 1024 * 1024).fill(5);
    const sending = channel.writer.send(Command.STATE, big);
    const frame = await daemon.reader.next();
    await sending;
    assert.equal(frame?.command, Command.STATE);
    assert.equal(frame?.payload.length, big.length);
    await daemon.writer.send(Command.ACK);
    assert.equal((await channel.reader.next())?.command, Command.ACK);
    channel.close();
    assert.equal(await daemon.reader.next(), null); // the readable's end closed `conn` too
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
