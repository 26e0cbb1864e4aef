import assert from "node:assert/strict";
import { join } from "node:path";
import { ConsoleHub, TAKEN_NOTICE } from "./console_hub.ts";
import { ConsoleReader } from "./testing/console_reader.ts";

const encoder = new TextEncoder();

/** A raw console client: sends `hello`, then collects what it receives. */
async function client(path: string, hello: string) {
  const conn = await Deno.connect({ transport: "unix", path });
  await conn.write(encoder.encode(hello));
  const output = new ConsoleReader(conn);
  return {
    conn,
    done: output.done,
    text: () => output.text(),
    waitFor: (pattern: RegExp) => output.waitFor(pattern, 10_000),
    type: (bytes: string) => conn.write(encoder.encode(bytes)),
  };
}

Deno.test("ConsoleHub: rw! (console --force) takes the keyboard; the previous typist is told and only watches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-console-" });
  const hub = new ConsoleHub(join(dir, "log"));
  const typed: string[] = [];
  hub.setInput((bytes) => typed.push(new TextDecoder().decode(bytes)));
  const path = join(dir, "console.sock");
  hub.listen(path);
  try {
    const first = await client(path, "rw\n");
    await first.waitFor(/^ok rw\n/);
    const second = await client(path, "rw\n");
    await second.waitFor(/^ok ro\n/);
    await first.type("a");
    while (typed.join("") !== "a") await new Promise((resolve) => setTimeout(resolve, 10));

    const forcer = await client(path, "rw!\n");
    await forcer.waitFor(/^ok rw\n/);
    assert.deepEqual(hub.clients, { readWrite: true, readOnly: 2 });
    await first.waitFor(/read-only now\]/);
    assert.ok(first.text().endsWith(TAKEN_NOTICE));
    assert.doesNotMatch(second.text(), /read-only now/, "only the one who typed is told");

    await first.type("x"); // dropped: it watches now
    await forcer.type("b");
    const deadline = Date.now() + 10_000;
    while (typed.join("") !== "ab" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // room for a stray "x"
    assert.equal(typed.join(""), "ab");

    hub.write(encoder.encode("guest says hi\n"));
    for (const each of [first, second, forcer]) await each.waitFor(/guest says hi\n$/);
    // A forced take-over when nobody types is a plain rw attach.
    forcer.conn.close();
    await forcer.done;
    const deadline2 = Date.now() + 10_000;
    while (hub.clients.readWrite && Date.now() < deadline2) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const again = await client(path, "rw!\n");
    await again.waitFor(/^ok rw\n/);
    assert.equal(first.text().split(TAKEN_NOTICE).length, 2, "told once, not again");
    for (const each of [first, second, again]) each.conn.close();
    await Promise.all([first.done, second.done, again.done]);
  } finally {
    await hub.close();
    const log = await Deno.readTextFile(join(dir, "log"));
    assert.match(log, /guest says hi/);
    assert.doesNotMatch(log, /read-only now/, "the notice is not guest output");
    await Deno.remove(dir, { recursive: true });
  }
});
