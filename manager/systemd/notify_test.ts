import assert from "node:assert/strict";
import { join } from "node:path";
import { closeFd, unwrap } from "../../ffi/libc.ts";
import { read } from "../../ffi/fs.ts";
import {
  AF_UNIX,
  bind,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  socket,
} from "../../ffi/socket.ts";
import {
  NotifyError,
  notifyReady,
  notifyStatus,
  notifyStopping,
  sdNotify,
  unixAddress,
} from "./notify.ts";

/** A datagram socket bound at `address`, as systemd binds its notify socket. */
function bindListener(address: string): { receive(): string | undefined; close(): void } {
  const fd = unwrap(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC), "socket");
  const { bytes, length } = unixAddress(address);
  unwrap(bind(fd, bytes, length), `bind(${address})`);
  return {
    receive() {
      const buffer = new Uint8Array(4096);
      const count = read(fd, buffer);
      return count < 0 ? undefined : new TextDecoder().decode(buffer.subarray(0, count));
    },
    close: () => closeFd(fd),
  };
}

async function withEnv(value: string | undefined, run: () => void | Promise<void>) {
  const before = Deno.env.get("NOTIFY_SOCKET");
  if (value === undefined) Deno.env.delete("NOTIFY_SOCKET");
  else Deno.env.set("NOTIFY_SOCKET", value);
  try {
    await run();
  } finally {
    if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", before);
  }
}

Deno.test("notifyReady() sends READY=1 to the socket path in NOTIFY_SOCKET", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-notify-" });
  const path = join(dir, "notify");
  const listener = bindListener(path);
  try {
    await withEnv(path, () => {
      assert.equal(notifyReady("Serving 3 domains"), true);
      assert.equal(listener.receive(), `READY=1\nSTATUS=Serving 3 domains\nMAINPID=${Deno.pid}`);
      assert.equal(notifyStatus("line one\nline two"), true);
      assert.equal(listener.receive(), "STATUS=line one line two");
      assert.equal(notifyStopping(), true);
      assert.equal(listener.receive(), "STOPPING=1\nSTATUS=Stopping; domains keep running");
      assert.equal(listener.receive(), undefined);
    });
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sdNotify() reaches an abstract socket named with '@'", () => {
  const name = `@denovisor-notify-test-${Deno.pid}-${crypto.randomUUID()}`;
  const listener = bindListener(name);
  try {
    assert.equal(sdNotify("READY=1", name), true);
    assert.equal(listener.receive(), "READY=1");
  } finally {
    listener.close();
  }
});

Deno.test("notify functions do nothing without NOTIFY_SOCKET", async () => {
  await withEnv(undefined, () => {
    assert.equal(notifyReady(), false);
    assert.equal(notifyStatus("x"), false);
    assert.equal(notifyStopping(), false);
  });
});

Deno.test("sdNotify() refuses a malformed or unreachable NOTIFY_SOCKET", () => {
  assert.throws(
    () => sdNotify("READY=1", "relative/sock"),
    new NotifyError(
      "NOTIFY_SOCKET=relative/sock is neither a socket path nor an @abstract name; unset it or fix the unit",
    ),
  );
  assert.throws(
    () => sdNotify("READY=1", `/${"x".repeat(120)}`),
    /is longer than a unix socket address/,
  );
  assert.throws(
    () => sdNotify("READY=1", "/nonexistent/denovisor-notify.sock"),
    /^NotifyError: Cannot notify systemd at \/nonexistent\/denovisor-notify.sock: sendto\(.*\) failed/,
  );
});
