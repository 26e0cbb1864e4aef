import assert from "node:assert/strict";
import { ConsoleOpenError, FileConsole } from "./file_console.ts";
import { NullConsole } from "./null_console.ts";
import { openConsole } from "./open_console.ts";

Deno.test("a file console creates its file 0600 and appends to it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/console.log`;
    const first = new FileConsole(path);
    first.write(new TextEncoder().encode("one\n"));
    await first.close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const second = openConsole({ kind: "file", path });
    second.write(new TextEncoder().encode("two\n"));
    await second.close();
    assert.equal(await Deno.readTextFile(path), "one\ntwo\n");
    assert.equal(second.stats.bytesWritten, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file console that cannot be opened names the path", () => {
  assert.throws(
    () => new FileConsole("/nonexistent-dir/console.log"),
    (e: unknown) =>
      e instanceof ConsoleOpenError && e.message.includes("/nonexistent-dir/console.log"),
  );
});

Deno.test("the null console discards output and counts it", async () => {
  const console = openConsole({ kind: "null" });
  assert.ok(console instanceof NullConsole);
  console.write(new Uint8Array(5));
  await console.close();
  assert.equal(console.stats.bytesDropped, 5);
  assert.equal(console.stats.bytesWritten, 0);
});
