import assert from "node:assert/strict";
import { OutputQueue } from "./output_queue.ts";

/** A writer whose first `failures` writes fail with ENOSPC, as a full disk does. */
function fullThenRoomy(failures: number) {
  const written: string[] = [];
  return {
    written,
    write(bytes: Uint8Array): Promise<number> {
      if (failures-- > 0) {
        const error = new Error("No space left on device (os error 28)") as Error & {
          code: string;
        };
        error.code = "ENOSPC";
        return Promise.reject(error);
      }
      written.push(new TextDecoder().decode(bytes));
      return Promise.resolve(bytes.length);
    },
  };
}

const isFull = (error: Error) => (error as { code?: string }).code === "ENOSPC";

Deno.test("OutputQueue with transient errors loses only the output of a full moment", async () => {
  const writer = fullThenRoomy(1);
  const queue = new OutputQueue(writer, { transient: isFull });
  queue.push(new TextEncoder().encode("lost"));
  await queue.flush();
  queue.push(new TextEncoder().encode("kept"));
  await queue.flush();
  assert.deepEqual(writer.written, ["kept"]);
  assert.equal(queue.stats.bytesDropped, 4);
  assert.equal(queue.stats.error, undefined);
});

Deno.test("OutputQueue without transient errors stays off after the first error", async () => {
  const writer = fullThenRoomy(1);
  const queue = new OutputQueue(writer);
  queue.push(new TextEncoder().encode("lost"));
  await queue.flush();
  queue.push(new TextEncoder().encode("also lost"));
  await queue.flush();
  assert.deepEqual(writer.written, []);
  assert.ok(queue.stats.error);
});
