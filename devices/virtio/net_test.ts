import { pollReadable } from "../../ffi/socket.ts";
import { ValidationError } from "../../common/validators.ts";
import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import type { ActivateContext, VirtioInterrupt } from "./virtio_device.ts";
import { VIRTIO_F } from "./virtio_device.ts";
import { VirtQueueError } from "./queue_types.ts";
import { type NetRateLimiter, parseMac, VirtioNet } from "./net.ts";
import { NET_F, NET_HDR } from "./net_header.ts";
import { TUN_F } from "../net/tap.ts";
import { isTestFrame, openQuietTap, PacketSocket, testFrame } from "../net/testing/test_tap.ts";
import { rarpAnnouncement } from "../net/announce.ts";

interface Harness {
  rx: FakeQueue;
  tx: FakeQueue;
  context: ActivateContext;
  interrupts: number[];
  configChanges: number;
  failures: string[];
}

function harness(features: bigint, rx = new FakeQueue(), tx = new FakeQueue()): Harness {
  const h: Harness = {
    rx,
    tx,
    interrupts: [],
    configChanges: 0,
    failures: [],
    context: undefined as unknown as ActivateContext,
  };
  const interrupt: VirtioInterrupt = {
    usedBuffer: (q) => h.interrupts.push(q),
    configChanged: () => h.configChanges++,
  };
  h.context = {
    memory: GuestMemory.ofSize(4096),
    features,
    queues: [rx, tx],
    interrupt,
    fail: (reason) => h.failures.push(reason),
  };
  return h;
}

const BASE = VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS;

/** A 12-byte virtio_net_hdr. */
function header(flags = 0, gsoType = 0, gsoSize = 0): Uint8Array {
  const bytes = new Uint8Array(12);
  bytes[0] = flags;
  bytes[1] = gsoType;
  new DataView(bytes.buffer).setUint16(4, gsoSize, true);
  return bytes;
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("VirtioNet offers the offloads the tap accepted and nothing more", () => {
  const full = new VirtioNet({
    tap: { name: "t", fd: -1, supportedOffloads: TUN_F.CSUM | TUN_F.TSO4, setOffloads() {} },
  });
  assert.ok(full.features & NET_F.CSUM && full.features & NET_F.GUEST_TSO4);
  assert.equal(full.features & NET_F.HOST_TSO6, 0n);
  assert.equal(full.features & NET_F.GUEST_UFO, 0n);
  assert.ok(full.features & VIRTIO_F.VERSION_1 && full.features & NET_F.MRG_RXBUF);
  const bare = new VirtioNet({
    tap: { name: "t", fd: -1, supportedOffloads: 0, setOffloads() {} },
    mergeableRxBuffers: false,
  });
  assert.equal(bare.features & (NET_F.CSUM | NET_F.GUEST_CSUM | NET_F.MRG_RXBUF), 0n);
  full.close();
  bare.close();
});

Deno.test("VirtioNet config holds the MAC and link status, and link changes notify", () => {
  const net = new VirtioNet({
    tap: { name: "t", fd: -1, supportedOffloads: 0, setOffloads() {} },
    mac: "52:54:00:12:34:56",
  });
  const config = new Uint8Array(8);
  net.readConfig(0, config);
  assert.deepEqual([...config], [0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0]);
  const h = harness(BASE);
  net.activate(h.context);
  net.setLinkUp(false);
  net.readConfig(6, config.subarray(0, 2));
  assert.deepEqual([...config.subarray(0, 2)], [0, 0]);
  assert.equal(h.configChanges, 1);
  net.writeConfig(0, new Uint8Array([1, 2, 3]));
  net.readConfig(0, config.subarray(0, 1));
  assert.equal(config[0], 0x52);
  assert.throws(() => parseMac("01:00:00:00:00:00"), ValidationError);
  assert.throws(() => parseMac("52:54:00:12:34"), ValidationError);
  assert.throws(() => parseMac("00:00:00:00:00:00"), ValidationError);
  net.close();
});

Deno.test("VirtioNet sets the tap offloads to what the driver accepted", () => {
  const calls: number[] = [];
  const net = new VirtioNet({
    tap: { name: "t", fd: -1, supportedOffloads: 0x1f, setOffloads: (f) => calls.push(f) },
  });
  net.activate(harness(BASE | NET_F.GUEST_CSUM | NET_F.GUEST_TSO4 | NET_F.HOST_TSO6).context);
  assert.deepEqual(calls, [TUN_F.CSUM | TUN_F.TSO4]);
  net.reset();
  assert.deepEqual(calls, [TUN_F.CSUM | TUN_F.TSO4, 0]);
  net.close();
});

Deno.test("VirtioNet transmits frames that arrive byte for byte on the host side", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: { ...tapView(tap), close: undefined } });
  const h = harness(BASE);
  net.activate(h.context);
  const frame = testFrame(300, 1);
  // Header split over two buffers, frame over two more.
  h.tx.add([
    header().subarray(0, 5),
    header().subarray(5),
    frame.subarray(0, 100),
    frame.subarray(100),
  ]);
  net.notify(1);
  assert.deepEqual(h.tx.used, [{ head: 0, written: 0 }]);
  assert.deepEqual(h.interrupts, [1]);
  const seen = await host.receiveMatching(isTestFrame);
  assert.deepEqual(seen, frame);
  assert.equal(net.counters.txFrames, 1);
  assert.equal(net.counters.txBytes, 300);
  net.close();
});

Deno.test("VirtioNet announces its MAC with a RARP on the tap, not counted as a guest frame", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({
    tap: { ...tapView(tap), close: undefined },
    mac: "52:54:00:aa:bb:cc",
  });
  assert.equal(net.announce(), true);
  const seen = await host.receiveMatching((f) => f[12] === 0x80 && f[13] === 0x35);
  assert.ok(seen, "no RARP frame on the host side");
  assert.deepEqual(seen.subarray(0, 60), rarpAnnouncement(parseMac("52:54:00:aa:bb:cc")));
  assert.equal(net.counters.txFrames, 0);
  net.close();
});

Deno.test("VirtioNet drops transmit frames with bad headers and still returns the chains", () => {
  using tap = openQuietTap();
  const logs: string[] = [];
  const net = new VirtioNet({ tap: tapView(tap), log: (m) => logs.push(m) });
  const h = harness(BASE);
  net.activate(h.context);
  h.tx.add([header(0x2), testFrame(60, 2)]); // DATA_VALID is receive-only
  h.tx.add([header(NET_HDR.F_NEEDS_CSUM, NET_HDR.GSO_TCPV4, 1400), testFrame(60, 3)]); // not negotiated
  h.tx.add([new Uint8Array(6)]); // shorter than the header
  h.tx.add([header(), new Uint8Array(4)]); // shorter than an Ethernet header
  net.notify(1);
  assert.equal(h.tx.used.length, 4);
  assert.equal(net.counters.txDropped, 4);
  assert.equal(net.counters.txFrames, 0);
  assert.equal(logs.length, 4);
  net.close();
});

Deno.test("VirtioNet receives host frames into guest buffers byte for byte", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: tapView(tap), mergeableRxBuffers: false });
  const h = harness(BASE);
  const first = new Uint8Array(5);
  const rest = new Uint8Array(2000);
  rest.fill(0xee);
  h.rx.add([], [first, rest]);
  net.activate(h.context);
  const frame = testFrame(500, 4);
  host.send(frame);
  const [source] = net.eventSources();
  await until(() => (source.onReadable(), h.rx.used.length === 1));
  const landed = concat([first, rest]);
  assert.deepEqual(h.rx.used, [{ head: 0, written: 512 }]);
  assert.deepEqual(landed.subarray(12, 512), frame);
  assert.equal(new DataView(landed.buffer).getUint16(10, true), 1, "num_buffers");
  assert.equal(landed[0], 0, "no flags");
  assert.deepEqual(h.interrupts, [0]);
  assert.equal(net.counters.rxFrames, 1);
  assert.equal(net.counters.rxBytes, 500);
  net.close();
});

Deno.test("VirtioNet drops a frame too large for the buffers and keeps the chain", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: tapView(tap), mergeableRxBuffers: false });
  const h = harness(BASE);
  const buffer = new Uint8Array(12 + 200);
  h.rx.add([], [buffer]);
  net.activate(h.context);
  host.send(testFrame(400, 5));
  const small = testFrame(100, 6);
  host.send(small);
  const [source] = net.eventSources();
  await until(() => (source.onReadable(), h.rx.used.length === 1));
  assert.equal(net.counters.rxDropped, 1);
  assert.deepEqual(buffer.subarray(12, 112), small);
  net.close();
});

Deno.test("VirtioNet leaves frames in the tap while it has no receive buffers", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: tapView(tap), mergeableRxBuffers: false });
  const h = harness(BASE);
  net.activate(h.context);
  const frame = testFrame(80, 7);
  host.send(frame);
  const [source] = net.eventSources();
  assert.equal(pollReadable(source.fd), false, "the gate hides the tap while buffers are missing");
  const buffer = new Uint8Array(1600);
  h.rx.add([], [buffer]);
  net.notify(0);
  await until(() => (source.onReadable(), h.rx.used.length === 1));
  assert.deepEqual(buffer.subarray(12, 92), frame);
  assert.equal(net.counters.rxDropped, 0);
  net.close();
});

Deno.test("VirtioNet spreads a frame over several chains with mergeable buffers", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: tapView(tap) });
  const h = harness(BASE | NET_F.MRG_RXBUF);
  const buffers = [0, 1, 2, 3].map(() => new Uint8Array(512));
  for (const b of buffers) h.rx.add([], [b]);
  net.activate(h.context);
  const frame = testFrame(1000, 8);
  host.send(frame);
  const [source] = net.eventSources();
  await until(() => (source.onReadable(), h.rx.used.length >= 2));
  assert.deepEqual(h.rx.used, [{ head: 0, written: 512 }, { head: 1, written: 500 }]);
  const landed = concat(buffers);
  assert.equal(new DataView(landed.buffer).getUint16(10, true), 2, "num_buffers");
  assert.deepEqual(landed.subarray(12, 1012), frame);
  net.close();
});

Deno.test("VirtioNet holds transmit frames while the rate limiter is empty", async () => {
  using tap = openQuietTap();
  let allow = false;
  const limiter: NetRateLimiter = { consume: () => allow, retryDelayMs: () => 5 };
  const net = new VirtioNet({ tap: tapView(tap), txRateLimiter: limiter });
  const h = harness(BASE);
  net.activate(h.context);
  h.tx.add([header(), testFrame(60, 9)]);
  net.notify(1);
  assert.equal(h.tx.used.length, 0);
  allow = true;
  await until(() => h.tx.used.length === 1);
  assert.equal(net.counters.txFrames, 1);
  net.close();
});

Deno.test("VirtioNet fails the device on a malformed chain instead of throwing", () => {
  using tap = openQuietTap();
  const net = new VirtioNet({ tap: tapView(tap) });
  const broken = new FakeQueue();
  broken.pop = () => {
    throw new VirtQueueError("descriptor loop");
  };
  const h = harness(BASE, new FakeQueue(), broken);
  net.activate(h.context);
  net.notify(1);
  assert.equal(h.failures.length, 1);
  assert.match(h.failures[0], /descriptor loop/);
  net.close();
});

function tapView(
  tap: { name: string; fd: number; supportedOffloads: number; setOffloads(f: number): void },
) {
  return {
    name: tap.name,
    fd: tap.fd,
    supportedOffloads: tap.supportedOffloads,
    setOffloads: (flags: number) => tap.setOffloads(flags),
  };
}

Deno.test("VirtioNet takes a frame into a chain of more buffers than one readv can name", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({ tap: tapView(tap) });
  const h = harness(BASE | NET_F.MRG_RXBUF);
  // 1100 buffers of 4 bytes: the first 1023 are named (4092 bytes), then the overflow.
  const many = Array.from({ length: 1100 }, () => new Uint8Array(4));
  h.rx.add([], many);
  const plain = new Uint8Array(2048);
  h.rx.add([], [plain]);
  net.activate(h.context);
  const first = testFrame(500, 9);
  const second = testFrame(1400, 10);
  host.send(first);
  const [source] = net.eventSources();
  await until(() => (source.onReadable(), h.rx.used.length === 1));
  assert.deepEqual(concat(many).subarray(12, 512), first);
  host.send(second);
  await until(() => (source.onReadable(), h.rx.used.length === 2));
  assert.deepEqual(h.rx.used, [{ head: 0, written: 512 }, { head: 1, written: 1412 }]);
  assert.deepEqual(plain.subarray(12, 1412), second);
  assert.equal(net.counters.rxDropped, 0);
  net.close();
});
