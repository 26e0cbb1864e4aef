import assert from "node:assert/strict";
import { RecordingContext } from "./_block_test_support.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { fillRandom, VirtioRng } from "./rng.ts";
import { VirtQueueError } from "./queue_types.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import { VIRTIO_F } from "./virtio_device.ts";

Deno.test("fillRandom() fills large buffers completely", () => {
  const bytes = new Uint8Array(100_000);
  fillRandom(bytes);
  const zeroes = bytes.reduce((n, b) => n + (b === 0 ? 1 : 0), 0);
  assert.ok(zeroes < 1000, `${zeroes} zero bytes is not random`);
  assert.notEqual(bytes[99_999] | bytes[99_998] | bytes[99_997] | bytes[99_996], 0);
});

Deno.test("virtio-rng fills every writable buffer and reports the bytes written", () => {
  const device = new VirtioRng();
  const queue = new FakeQueue();
  const context = new RecordingContext([queue], VIRTIO_F.VERSION_1);
  device.activate(context);
  const a = new Uint8Array(64);
  const b = new Uint8Array(64);
  const head = queue.add([Uint8Array.of(1, 2, 3)], [a, b]);
  device.notify(0);
  assert.deepEqual(queue.used, [{ head, written: 128 }]);
  assert.ok(a.some((x) => x !== 0) && b.some((x) => x !== 0));
  assert.deepEqual(context.usedInterrupts, [0]);
  assert.equal(device.bytesServed, 128);
});

Deno.test("virtio-rng rate limiting holds requests in order and retries on time", () => {
  const time = { now: 0 };
  const limiter = new RateLimiter({ bandwidth: { size: 100, refillTimeMs: 1000 } }, () => time.now);
  const retries: Array<{ callback: () => void; delay: number }> = [];
  const device = new VirtioRng({
    rateLimiter: limiter,
    scheduleRetry: (callback, delay) => {
      retries.push({ callback, delay });
      return () => {};
    },
    fill: (bytes) => bytes.fill(0x5a),
  });
  const queue = new FakeQueue();
  device.activate(new RecordingContext([queue], VIRTIO_F.VERSION_1));
  const heads = [60, 60, 60].map((n) => queue.add([], [new Uint8Array(n)]));
  device.notify(0);
  assert.deepEqual(queue.used.map((u) => u.head), [heads[0]]);
  assert.equal(retries.length, 1);
  assert.equal(retries[0].delay, 200, "20 missing bytes at 100 bytes/s");
  time.now = 200;
  retries[0].callback();
  assert.deepEqual(queue.used.map((u) => u.head), heads.slice(0, 2));
  assert.equal(retries[1].delay, 600);
  time.now = 800;
  retries[1].callback();
  assert.deepEqual(queue.used.map((u) => u.head), heads);
});

Deno.test("virtio-rng fails the device on a malformed chain", () => {
  const device = new VirtioRng();
  const queue = new FakeQueue();
  queue.pop = () => {
    throw new VirtQueueError("descriptor out of guest RAM");
  };
  const context = new RecordingContext([queue], VIRTIO_F.VERSION_1);
  device.activate(context);
  assert.match(context.failures[0], /out of guest RAM/);
});
