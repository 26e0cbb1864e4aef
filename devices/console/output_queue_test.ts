import assert from "node:assert/strict";
import { OutputQueue } from "./output_queue.ts";

/** A writer that takes at most `limit` bytes per call and records each call. */
class RecordingWriter {
  calls: Uint8Array[] = [];
  constructor(readonly limit = Infinity) {}
  write(bytes: Uint8Array): Promise<number> {
    const taken = bytes.slice(0, Math.min(bytes.length, this.limit));
    this.calls.push(taken);
    return Promise.resolve(taken.length);
  }
  get text(): string {
    return this.calls.map((c) => new TextDecoder().decode(c)).join("");
  }
}

Deno.test("bytes pushed while a write is in flight are coalesced into one write", async () => {
  const writer = new RecordingWriter();
  const queue = new OutputQueue(writer);
  for (const c of "hello world") queue.push(new TextEncoder().encode(c));
  await queue.flush();
  assert.equal(writer.text, "hello world");
  assert.equal(writer.calls.length, 2, "the first byte goes at once, the rest together");
  assert.equal(queue.stats.bytesWritten, 11);
});

Deno.test("short writes are continued until everything is out", async () => {
  const writer = new RecordingWriter(3);
  const queue = new OutputQueue(writer);
  queue.push(new TextEncoder().encode("0123456789"));
  await queue.flush();
  assert.equal(writer.text, "0123456789");
});

Deno.test("output beyond the pending limit is dropped, not blocked on", async () => {
  let release = () => {};
  const stalled = {
    write: (bytes: Uint8Array) =>
      new Promise<number>((resolve) => (release = () => resolve(bytes.length))),
  };
  const queue = new OutputQueue(stalled, { maxPendingBytes: 8 });
  queue.push(new Uint8Array(1)); // in flight
  for (let i = 0; i < 20; i++) queue.push(new Uint8Array(1));
  assert.equal(queue.stats.bytesDropped, 12);
  release();
  await new Promise((r) => setTimeout(r, 0));
  release();
  await queue.flush();
  assert.equal(queue.stats.bytesWritten, 9);
});

Deno.test("a write error drops later output and is reported once", async () => {
  const failing = { write: () => Promise.reject(new Error("broken pipe")) };
  const queue = new OutputQueue(failing);
  queue.push(new Uint8Array(4));
  await queue.flush();
  queue.push(new Uint8Array(2));
  await queue.flush();
  assert.equal(queue.stats.error?.message, "broken pipe");
  assert.equal(queue.stats.bytesDropped, 6);
  assert.equal(queue.stats.bytesWritten, 0);
});
