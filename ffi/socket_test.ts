import assert from "node:assert/strict";
import { join } from "node:path";
import { closeFd } from "./libc.ts";
import { read } from "./fs.ts";
import {
  AF_UNIX,
  bind,
  interfaceIndex,
  pollReadable,
  sendto,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  socket,
} from "./socket.ts";

function unixAddress(path: string): Uint8Array {
  const bytes = new Uint8Array(2 + 108);
  new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
  bytes.set(new TextEncoder().encode(path), 2);
  return bytes;
}

Deno.test("a datagram sent with sendto() arrives on the bound socket and polls readable", () => {
  const dir = Deno.makeTempDirSync();
  const address = unixAddress(join(dir, "s"));
  const receiver = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
  const sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC);
  try {
    assert.ok(receiver >= 0 && sender >= 0);
    assert.equal(bind(receiver, address), 0);
    assert.equal(pollReadable(receiver), false);
    assert.equal(sendto(sender, new TextEncoder().encode("READY=1"), address), 7);
    assert.equal(pollReadable(receiver, 1000), true);
    const buffer = new Uint8Array(64);
    const length = read(receiver, buffer);
    assert.equal(new TextDecoder().decode(buffer.subarray(0, length)), "READY=1");
    assert.equal(bind(-1, address), -1);
  } finally {
    closeFd(receiver);
    closeFd(sender);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("interfaceIndex() finds lo and says 0 for an interface that does not exist", () => {
  assert.ok(interfaceIndex("lo") > 0);
  assert.equal(interfaceIndex("no-such-if0"), 0);
});
