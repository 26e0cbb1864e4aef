import assert from "node:assert/strict";
import { EventLoop } from "./event_loop.ts";
import { EventFd } from "../ffi/eventfd.ts";

Deno.test("EventLoop calls back for readable fds and stops cleanly", async () => {
  const loop = new EventLoop();
  using a = new EventFd();
  using b = new EventFd();
  const seen: string[] = [];
  let done: () => void;
  const bothSeen = new Promise<void>((resolve) => done = resolve);
  loop.add(a.fd, () => {
    seen.push(`a${a.take()}`);
    if (seen.length === 2) done();
  });
  loop.add(b.fd, () => {
    seen.push(`b${b.take()}`);
    if (seen.length === 2) done();
  });
  const running = loop.start();
  a.signal(3n);
  b.signal(1n);
  await bothSeen;
  assert.deepEqual(seen.sort(), ["a3", "b1"]);
  loop.remove(a.fd);
  a.signal();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 2, "a removed fd is not dispatched");
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
