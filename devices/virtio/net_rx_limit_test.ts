/**
 * virtio-net's receive rate limiter: a frame the limiter refuses is held back, unpublished,
 * and reception stops (the next frame waits in the tap, and the tap becoming readable again
 * does not restart it); the limiter's retry timer alone resumes it, delivering the held
 * frame first. Needs root for the tap, like net_test.ts.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { pollReadable } from "../../ffi/socket.ts";
import { openQuietTap, PacketSocket, testFrame } from "../net/testing/test_tap.ts";
import { NET_F } from "./net_header.ts";
import { type NetRateLimiter, VirtioNet } from "./net.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import { type ActivateContext, VIRTIO_F } from "./virtio_device.ts";

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

Deno.test("VirtioNet stops receiving when the rx limiter is empty and resumes on its retry", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  let allow = false;
  const consumed: number[] = [];
  const limiter: NetRateLimiter = {
    consume: (bytes) => {
      consumed.push(bytes);
      return allow;
    },
    retryDelayMs: () => 5,
  };
  const net = new VirtioNet({
    tap: {
      name: tap.name,
      fd: tap.fd,
      supportedOffloads: tap.supportedOffloads,
      setOffloads: (flags: number) => tap.setOffloads(flags),
    },
    mergeableRxBuffers: false,
    rxRateLimiter: limiter,
  });
  const rx = new FakeQueue();
  for (let i = 0; i < 3; i++) rx.add([], [new Uint8Array(2048)]);
  const interrupts: number[] = [];
  const context: ActivateContext = {
    memory: GuestMemory.ofSize(4096),
    features: VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS,
    queues: [rx, new FakeQueue()],
    interrupt: { usedBuffer: (q) => interrupts.push(q), configChanged: () => {} },
    fail: (reason) => assert.fail(reason),
  };
  net.activate(context);
  try {
    host.send(testFrame(500, 1));
    host.send(testFrame(300, 2));
    const [source] = net.eventSources();
    // Synchronous from here to the end of the checks: the 5 ms retry timer cannot run.
    assert.ok(pollReadable(tap.fd, 5000), "the first frame never reached the tap");
    source.onReadable();
    // Refused: read into the receive chain but not handed to the driver.
    assert.equal(rx.used.length, 0);
    assert.deepEqual(consumed, [500]);
    assert.ok(pollReadable(tap.fd, 5000), "the second frame never reached the tap");
    source.onReadable(); // the tap is readable, but the limiter said wait
    assert.equal(rx.used.length, 0);
    assert.deepEqual(consumed, [500]);
    assert.ok(pollReadable(tap.fd), "the second frame left the tap");
    // Only the retry timer delivers them: nothing calls onReadable any more.
    allow = true;
    await until(() => rx.used.length === 2);
    assert.deepEqual(rx.used.map((u) => u.written), [512, 312]);
    assert.deepEqual(consumed, [500, 500, 300]);
    assert.equal(net.counters.rxFrames, 2);
    assert.equal(net.counters.rxBytes, 800);
  } finally {
    net.close();
  }
});

Deno.test("an ops limit of one frame per minute lets one frame through, not two", async () => {
  using tap = openQuietTap();
  using host = new PacketSocket(tap.name);
  const net = new VirtioNet({
    tap: {
      name: tap.name,
      fd: tap.fd,
      supportedOffloads: tap.supportedOffloads,
      setOffloads: (flags: number) => tap.setOffloads(flags),
    },
    mergeableRxBuffers: false,
    rxRateLimiter: new RateLimiter({ ops: { size: 1, refillTimeMs: 60_000 } }),
  });
  const rx = new FakeQueue();
  for (let i = 0; i < 3; i++) rx.add([], [new Uint8Array(2048)]);
  net.activate({
    memory: GuestMemory.ofSize(4096),
    features: VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS,
    queues: [rx, new FakeQueue()],
    interrupt: { usedBuffer: () => {}, configChanged: () => {} },
    fail: (reason) => assert.fail(reason),
  });
  try {
    const [source] = net.eventSources();
    for (const [size, seed] of [[200, 1], [200, 2], [200, 3]]) {
      host.send(testFrame(size, seed));
      assert.ok(pollReadable(tap.fd, 5000), "a frame never reached the tap");
      source.onReadable();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Before the fix the refused frame was delivered anyway: two frames for a budget of one.
    assert.equal(rx.used.length, 1);
    assert.equal(net.counters.rxFrames, 1);
  } finally {
    net.close();
  }
});
