import assert from "node:assert/strict";
import { Tap, TapError, TUN_F, VNET_HEADER_SIZE } from "./tap.ts";
import { PacketSocket } from "./testing/packet_socket.ts";
import { read, write } from "../../ffi/fs.ts";

let counter = 0;
/** A name no other test run uses at the same time. */
function uniqueName(prefix: string): string {
  return `${prefix}${Deno.pid % 100000}x${counter++}`;
}

function exists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

function ip(...args: string[]): void {
  const result = new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).outputSync();
  if (!result.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

Deno.test("Tap.open() creates a tap that is up and disappears on close", () => {
  const name = uniqueName("tt");
  const tap = Tap.open({ name, create: true, vnetHeader: true });
  try {
    assert.equal(tap.name, name);
    assert.ok(tap.created);
    assert.ok(tap.fd >= 0);
    const flags = Number(Deno.readTextFileSync(`/sys/class/net/${name}/flags`).trim());
    assert.equal(flags & 1, 1, "IFF_UP set");
  } finally {
    tap.close();
  }
  assert.equal(exists(name), false);
  tap.close();
});

Deno.test("Tap.open() with name auto lets the kernel pick a dv name", () => {
  using tap = Tap.open({ create: true, vnetHeader: true });
  assert.match(tap.name, /^dv\d+$/);
  assert.ok(exists(tap.name));
});

Deno.test("Tap.open() refuses to create a tap whose name is taken", () => {
  using first = Tap.open({ name: uniqueName("tt"), create: true, vnetHeader: true });
  assert.throws(
    () => Tap.open({ name: first.name, create: true, vnetHeader: true }),
    (error: unknown) =>
      error instanceof TapError && /exists; pick another name/.test(error.message),
  );
});

Deno.test("Tap.open() says how to create a missing tap when attaching", () => {
  assert.throws(
    () => Tap.open({ name: uniqueName("tm"), create: false, vnetHeader: true }),
    (error: unknown) => error instanceof TapError && /ip tuntap add/.test(error.message),
  );
});

Deno.test("Tap.open() rejects names the kernel cannot hold", () => {
  assert.throws(
    () => Tap.open({ name: "a-name-far-too-long", create: true, vnetHeader: true }),
    TapError,
  );
  assert.throws(() => Tap.open({ name: "a/b", create: true, vnetHeader: true }), TapError);
});

Deno.test("Tap.open() attaches to an existing persistent tap and leaves it on close", () => {
  const name = uniqueName("tp");
  ip("tuntap", "add", "dev", name, "mode", "tap");
  try {
    const tap = Tap.open({ name, create: false, vnetHeader: true });
    assert.equal(tap.created, false);
    tap.close();
    assert.ok(exists(name));
  } finally {
    ip("link", "del", name);
  }
});

Deno.test("Tap.open() enslaves the tap to a bridge given by name", () => {
  const bridge = uniqueName("tb");
  ip("link", "add", bridge, "type", "bridge");
  try {
    using tap = Tap.open({ name: uniqueName("tt"), create: true, bridge, vnetHeader: true });
    const master = Deno.realPathSync(`/sys/class/net/${tap.name}/master`);
    assert.ok(master.endsWith(`/${bridge}`), master);
  } finally {
    ip("link", "del", bridge);
  }
});

Deno.test("Tap.open() names a missing bridge and creates no tap", () => {
  const name = uniqueName("tt");
  assert.throws(
    () => Tap.open({ name, create: true, bridge: "nobr0", vnetHeader: true }),
    (error: unknown) =>
      error instanceof TapError && /Bridge nobr0 does not exist/.test(error.message),
  );
  assert.equal(exists(name), false);
});

Deno.test("Tap offloads: the kernel accepts checksum and TSO and refuses unknown flags", () => {
  using tap = Tap.open({ name: uniqueName("tt"), create: true, vnetHeader: true });
  assert.ok(tap.supportedOffloads & TUN_F.CSUM);
  assert.ok(tap.supportedOffloads & TUN_F.TSO4);
  tap.setOffloads(TUN_F.CSUM | TUN_F.TSO4);
  tap.setOffloads(0);
  assert.throws(() => tap.setOffloads(0x800), TapError);
});

Deno.test("Tap carries frames with the virtio-net header both ways", async () => {
  using tap = Tap.open({ name: uniqueName("tt"), create: true, vnetHeader: true });
  using host = new PacketSocket(tap.name);
  const frame = new Uint8Array(60);
  frame.fill(0xff, 0, 6); // broadcast
  frame.set([0x02, 0, 0, 0, 0, 1], 6);
  frame.set([0x88, 0xb5], 12); // local experimental ethertype
  frame.set(new TextEncoder().encode("tap-to-host"), 14);
  const out = new Uint8Array(VNET_HEADER_SIZE + frame.length);
  out.set(frame, VNET_HEADER_SIZE);
  assert.equal(write(tap.fd, out), out.length);
  const seen = await host.receiveMatching((f) => f[12] === 0x88 && f[13] === 0xb5);
  assert.deepEqual(seen, frame);

  const back = frame.slice();
  back.set(new TextEncoder().encode("host-to-tap"), 14);
  host.send(back);
  const buffer = new Uint8Array(2048);
  let received: Uint8Array | undefined;
  for (let i = 0; i < 2000 && received === undefined; i++) {
    const n = read(tap.fd, buffer);
    if (n > 0 && buffer[VNET_HEADER_SIZE + 12] === 0x88) {
      received = buffer.slice(VNET_HEADER_SIZE, n);
    } else await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.deepEqual(received, back);
});
