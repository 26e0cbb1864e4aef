/**
 * virtio-net on real split rings in guest memory (the path a guest driver takes: chains
 * read in place with `popInto`, buffers handed to readv/writev by their place in guest
 * RAM), where net_test.ts uses the in-memory fake queue.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { SplitQueue } from "./queue.ts";
import { SplitQueueDriver } from "./testing/driver_harness.ts";
import { VIRTIO_F } from "./virtio_device.ts";
import { VirtioNet } from "./net.ts";
import { NET_F } from "./net_header.ts";
import { isTestFrame, openQuietTap, PacketSocket, testFrame } from "../net/testing/test_tap.ts";

const RX_RING = 0x1000;
const TX_RING = 0x8000;
const DATA = 0x10_0000;
const FEATURES = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_INDIRECT_DESC | VIRTIO_F.RING_EVENT_IDX |
  NET_F.MAC | NET_F.STATUS;

function rig(features: bigint, mergeable: boolean) {
  const tap = openQuietTap();
  const host = new PacketSocket(tap.name);
  const memory = GuestMemory.ofSize(2 << 20);
  const ring = (base: number) =>
    new SplitQueueDriver(memory, { base, size: 16, eventIdx: true, indirectEntries: 4 });
  const rx = ring(RX_RING);
  const tx = ring(TX_RING);
  const net = new VirtioNet({
    tap: {
      name: tap.name,
      fd: tap.fd,
      supportedOffloads: tap.supportedOffloads,
      setOffloads: (flags) => tap.setOffloads(flags),
    },
    mergeableRxBuffers: mergeable,
  });
  const interrupts: number[] = [];
  const failures: string[] = [];
  net.activate({
    memory,
    features,
    queues: [
      new SplitQueue(memory, rx.config, { features }),
      new SplitQueue(memory, tx.config, { features }),
    ],
    interrupt: { usedBuffer: (q) => interrupts.push(q), configChanged() {} },
    fail: (reason) => failures.push(reason),
  });
  const [source] = net.eventSources();
  return {
    memory,
    rx,
    tx,
    net,
    host,
    source,
    interrupts,
    failures,
    [Symbol.dispose]() {
      net.close();
      host.close();
      tap.close();
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

Deno.test("VirtioNet on split rings sends frames from direct and indirect chains in order", async () => {
  using r = rig(FEATURES, false);
  const frames = [testFrame(60, 1), testFrame(1514, 2), testFrame(300, 3)];
  frames.forEach((frame, i) => {
    const at = DATA + i * 0x1000;
    r.memory.write(at + 12, frame); // header of zeros: no offloads
    const chain = [{ address: at, length: 12 }, { address: at + 12, length: frame.length }];
    r.tx.add(chain, { indirect: i === 1 });
  });
  r.tx.publish();
  r.net.notify(1);
  assert.deepEqual(r.failures, []);
  assert.deepEqual(r.tx.takeUsed().map((u) => u.written), [0, 0, 0]);
  assert.deepEqual(r.interrupts, [1]);
  for (const frame of frames) {
    const seen = await r.host.receiveMatching(isTestFrame);
    assert.deepEqual(seen, frame);
  }
  assert.equal(r.net.counters.txFrames, 3);
});

Deno.test("VirtioNet on split rings spreads frames over mergeable chains held across wake-ups", async () => {
  using r = rig(FEATURES | NET_F.MRG_RXBUF, true);
  // 800-byte chains: a full-sized frame (12 + 1518 bytes) needs two of them.
  const CHAIN = 800;
  const at = (chain: number) => DATA + chain * 0x1000;
  const post = (from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      r.rx.add([{ address: at(i), length: CHAIN, writable: true }]);
    }
    r.rx.publish();
  };
  post(0, 4);
  r.net.notify(0);
  const a = testFrame(1000, 4);
  const b = testFrame(300, 5);
  r.host.send(a);
  r.host.send(b);
  await until(() => (r.source.onReadable(), r.net.counters.rxFrames === 2));
  assert.deepEqual(r.rx.takeUsed().map((u) => u.written), [800, 212, 312]);
  assert.equal(r.memory.readU16(at(0) + 10), 2, "num_buffers of a");
  assert.deepEqual(
    new Uint8Array([...r.memory.read(at(0) + 12, 788), ...r.memory.read(at(1), 212)]),
    a,
  );
  assert.equal(r.memory.readU16(at(2) + 10), 1, "num_buffers of b");
  assert.deepEqual(r.memory.read(at(2) + 12, 300), b);
  // Chain 3 stays held: alone it cannot take a full-sized frame, so c waits in the tap.
  const c = testFrame(1514, 6);
  r.host.send(c);
  await new Promise((resolve) => setTimeout(resolve, 20));
  r.source.onReadable();
  assert.equal(r.net.counters.rxFrames, 2, "c waits for a second chain");
  post(4, 1);
  r.net.notify(0);
  await until(() => (r.source.onReadable(), r.net.counters.rxFrames === 3));
  assert.deepEqual(r.rx.takeUsed().map((u) => u.written), [800, 726]);
  assert.equal(r.memory.readU16(at(3) + 10), 2, "num_buffers of c");
  assert.deepEqual(
    new Uint8Array([...r.memory.read(at(3) + 12, 788), ...r.memory.read(at(4), 726)]),
    c,
  );
  assert.deepEqual(r.failures, []);
  assert.equal(r.net.counters.rxDropped, 0);
});
