import assert from "node:assert/strict";
import { join } from "node:path";
import { readLogTail } from "./log_tail.ts";

Deno.test("readLogTail() gives the last lines and says whether earlier output exists", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-log-tail-" });
  try {
    const log = join(dir, "web.log");
    assert.deepEqual(await readLogTail(log, 10), { text: "", shown: 0, earlier: false });
    await Deno.writeTextFile(log, "one\ntwo\n\nthree\nfour\n");
    assert.deepEqual(await readLogTail(log, 2), { text: "three\nfour", shown: 2, earlier: true });
    assert.deepEqual(await readLogTail(log, 4), {
      text: "one\ntwo\nthree\nfour",
      shown: 4,
      earlier: false,
    });
    assert.deepEqual(await readLogTail(log, 0), { text: "", shown: 0, earlier: true });
    // Output rotated away to web.log.1 is earlier output too.
    await Deno.writeTextFile(`${log}.1`, "zero\n");
    assert.equal((await readLogTail(log, 100)).earlier, true);
    // More than the window read: earlier output even if few lines are asked for.
    await Deno.remove(`${log}.1`);
    await Deno.writeTextFile(log, "x".repeat(2 * 1024 * 1024) + "\nlast\n");
    const window = await readLogTail(log, 5);
    assert.equal(window.earlier, true);
    assert.equal(window.text.split("\n").at(-1), "last");
    const big = await readLogTail(log, 1);
    assert.deepEqual(big, { text: "last", shown: 1, earlier: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
