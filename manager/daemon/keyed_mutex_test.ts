import assert from "node:assert/strict";
import { KeyedMutex } from "./keyed_mutex.ts";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("KeyedMutex runs calls for one key one at a time, in order, past failures", async () => {
  const mutex = new KeyedMutex();
  const log: string[] = [];
  let inside = 0;
  const job = (id: number, fail = false) =>
    mutex.run("a", async () => {
      inside++;
      assert.equal(inside, 1, "two calls for one key overlapped");
      log.push(`start ${id}`);
      await tick(5);
      log.push(`end ${id}`);
      inside--;
      if (fail) throw new Error(`job ${id} failed`);
      return id;
    });
  const results = await Promise.allSettled([job(1), job(2, true), job(3)]);
  assert.deepEqual(log, ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(mutex.busy("a"), false);
});

Deno.test("KeyedMutex lets different keys proceed in parallel", async () => {
  const mutex = new KeyedMutex();
  let release!: () => void;
  const held = mutex.run("a", () => new Promise<void>((resolve) => release = resolve));
  // "b" completes while "a" is still held.
  assert.equal(await mutex.run("b", () => "b done"), "b done");
  assert.equal(mutex.busy("a"), true);
  release();
  await held;
});
