/**
 * What `run --console file:PATH` must not do: hang on a FIFO before boot, or lose all the
 * guest's output to a full device without a word.
 */
import assert from "node:assert/strict";
import { ConsoleOpenError, FileConsole } from "./file_console.ts";

Deno.test("a file console refuses a FIFO instead of waiting for a reader", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/console.fifo`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  // A reader (O_RDWR does not wait on Linux), so that an unfixed open for writing returns
  // and the test fails instead of hanging.
  const reader = await Deno.open(fifo, { read: true, write: true });
  try {
    assert.throws(
      () => new FileConsole(fifo),
      (e: unknown) =>
        e instanceof ConsoleOpenError &&
        e.message === `Cannot use console file ${fifo}: it is a FIFO (opening it would wait ` +
            `for a reader); give a regular file or a terminal`,
    );
  } finally {
    reader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file console refuses a directory and accepts a character device", async () => {
  assert.throws(() => new FileConsole("/tmp"), /Cannot use console file \/tmp: it is a directory/);
  const devNull = new FileConsole("/dev/null");
  devNull.write(new Uint8Array(3));
  await devNull.close();
  assert.equal(devNull.writeError, undefined);
  assert.equal(devNull.stats.bytesWritten, 3);
});

Deno.test("a file console keeps the write error of a full device", async () => {
  const full = new FileConsole("/dev/full");
  full.write(new TextEncoder().encode("lost\n"));
  await full.flush();
  assert.ok(full.writeError, "no write error recorded");
  assert.match(full.writeError.message, /space/i);
  assert.equal(full.stats.bytesWritten, 0);
  assert.equal(full.stats.bytesDropped, 5);
  await full.close();
});
