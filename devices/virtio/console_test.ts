import assert from "node:assert/strict";
import { RecordingContext } from "./_block_test_support.ts";
import { VirtioConsole } from "./console.ts";
import { VirtQueueError } from "./queue_types.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import { VIRTIO_F } from "./virtio_device.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const encode = (s: string) => new TextEncoder().encode(s);

function setUp(inputBufferBytes?: number) {
  const written: string[] = [];
  const device = new VirtioConsole({
    output: { write: (bytes) => written.push(text(bytes)) },
    inputBufferBytes,
  });
  const rx = new FakeQueue();
  const tx = new FakeQueue();
  const context = new RecordingContext([rx, tx], VIRTIO_F.VERSION_1);
  return { device, rx, tx, context, written };
}

Deno.test("virtio-console sends transmitted buffers to the console output in order", () => {
  const t = setUp();
  t.device.activate(t.context);
  t.tx.add([encode("hello, "), encode("world")]);
  t.tx.add([encode("!\n")]);
  t.device.notify(1);
  assert.deepEqual(t.written, ["hello, ", "world", "!\n"]);
  assert.deepEqual(t.tx.used.map((u) => u.written), [0, 0]);
  assert.deepEqual(t.context.usedInterrupts, [1]);
  assert.equal(t.device.stats.bytesTransmitted, 14);
});

Deno.test("virtio-console keeps input until receive buffers arrive, then fills them", () => {
  const t = setUp();
  t.device.receive(encode("before activation "));
  t.device.activate(t.context);
  t.device.receive(encode("and after"));
  assert.equal(t.device.pendingInput, 27);
  const a = new Uint8Array(10);
  const b = new Uint8Array(100);
  t.rx.add([], [a]);
  t.rx.add([], [b]);
  t.device.notify(0);
  assert.equal(text(a), "before act");
  assert.equal(text(b.subarray(0, t.rx.used[1].written)), "ivation and after");
  assert.deepEqual(t.rx.used.map((u) => u.written), [10, 17]);
  assert.deepEqual(t.context.usedInterrupts, [0]);
  assert.equal(t.device.pendingInput, 0);
});

Deno.test("virtio-console does not use receive buffers when there is no input", () => {
  const t = setUp();
  t.device.activate(t.context);
  t.rx.add([], [new Uint8Array(8)]);
  t.device.notify(0);
  assert.equal(t.rx.used.length, 0);
  t.device.receive(encode("x"));
  assert.deepEqual(t.rx.used, [{ head: 0, written: 1 }]);
});

Deno.test("virtio-console drops input beyond its backlog bound and counts it", () => {
  const t = setUp(4);
  t.device.receive(encode("abcdef"));
  assert.equal(t.device.pendingInput, 4);
  assert.equal(t.device.stats.bytesDropped, 2);
  t.device.activate(t.context);
  const buffer = new Uint8Array(8);
  t.rx.add([], [buffer]);
  t.device.notify(0);
  assert.equal(text(buffer.subarray(0, 4)), "abcd");
});

Deno.test("virtio-console fails the device on a malformed transmit chain", () => {
  const t = setUp();
  t.tx.pop = () => {
    throw new VirtQueueError("descriptor loop");
  };
  t.device.activate(t.context);
  assert.match(t.context.failures[0], /descriptor loop/);
  t.device.notify(1);
  assert.equal(t.context.failures.length, 1);
});
