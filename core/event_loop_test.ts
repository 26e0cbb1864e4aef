import assert from "node:assert/strict";
import { EventLoop } from "./event_loop.ts";
import { EventFd } from "../ffi/eventfd.ts";

Deno.test("EventLoop calls back for readable fds and stops cleanly", async () => {
  const loop = new EventLoop();
  using a = new EventFd();
  using b = new EventFd();
  const seen: string[] = [];
  let done: () => void;
  let bothSeen = new Promise<void>((resolve) => done = resolve);
  loop.add(a.fd, () => {
    seen.push(`a${a.take()}`);
    if (seen.length === 2) done();
  });
  loop.add(b.fd, () => {
    seen.push(`b${b.take()}`);
    if (seen.length >= 2) done();
  });
  const running = loop.start();
  a.signal(3n);
  b.signal(1n);
  await bothSeen;
  assert.deepEqual(seen.sort(), ["a3", "b1"]);
  loop.remove(a.fd);
  // a is signalled before b: had it still been watched, the wait that reports b (or an
  // earlier one) would have reported a too, and a batch is dispatched synchronously.
  bothSeen = new Promise<void>((resolve) => done = resolve);
  a.signal();
  b.signal(5n);
  await bothSeen;
  assert.deepEqual(seen.slice(2), ["b5"], "a removed fd is not dispatched");
  await loop.stop();
  await running;
  await loop.stop(); // idempotent
});

Deno.test("EventLoop refuses to watch the same fd twice", async () => {
  const loop = new EventLoop();
  using a = new EventFd();
  loop.add(a.fd, () => a.take());
  assert.throws(() => loop.add(a.fd, () => {}), /already watched/);
  loop.start();
  await loop.stop();
});

Deno.test("EventLoop.hold() defers callbacks until released, and loses none", async () => {
  const loop = new EventLoop();
  using a = new EventFd();
  const seen: bigint[] = [];
  let wake!: () => void;
  const called = new Promise<void>((resolve) => wake = resolve);
  loop.add(a.fd, () => {
    seen.push(a.take());
    wake();
  });
  const running = loop.start();
  const release = loop.hold();
  assert.throws(() => loop.hold(), /already held/);
  a.signal(2n);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(seen, [], "nothing is dispatched while held");
  release();
  await called;
  assert.deepEqual(seen, [2n]);
  await loop.stop();
  await running;
});

Deno.test("EventLoop.stop() ends a hold that was never released, and runs no held callback", async () => {
  const loop = new EventLoop();
  using a = new EventFd();
  let calls = 0;
  loop.add(a.fd, () => {
    a.take();
    calls++;
  });
  const running = loop.start();
  const release = loop.hold();
  a.signal(1n);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await loop.stop(); // hung for ever before: the loop waited for the hold
  await running;
  assert.equal(calls, 0, "a callback held at the stop does not run");
  release(); // a late release is harmless
});
