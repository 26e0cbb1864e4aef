import assert from "node:assert/strict";
import { readTextInput, TextInputError } from "./text_input.ts";

Deno.test("readTextInput() reads a file up to its limit and drops a byte-order mark", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, '\ufeffname = "é"\n' + "x".repeat(200_000));
    // 3 bytes of BOM, 12 of the first line (é is two), 200,000 more.
    await assert.rejects(readTextInput(path, 200_014), TextInputError);
    const text = await readTextInput(path, 200_015);
    assert.ok(text.startsWith('name = "é"\n'), text.slice(0, 20));
    assert.equal(text.length, 11 + 200_000);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readTextInput() refuses a file over its limit, and an endless device, with a message", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, new Uint8Array(1025));
    await assert.rejects(
      readTextInput(path, 1024),
      (e) =>
        e instanceof TextInputError &&
        e.message === "larger than 1024 bytes, the most such a file may have",
    );
  } finally {
    await Deno.remove(path);
  }
  await assert.rejects(readTextInput("/dev/zero", 1 << 20), /larger than 1048576 bytes/);
});

Deno.test("readTextInput() says what is wrong with a missing file or a directory", async () => {
  await assert.rejects(readTextInput("/nonexistent/x.cfg", 1024), /^TextInputError: no such file$/);
  await assert.rejects(readTextInput("/tmp", 1024), /\/tmp is a directory/);
});
