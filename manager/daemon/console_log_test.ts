import assert from "node:assert/strict";
import {
  DEFAULT_LOG_LIMITS,
  logLimits,
  prepareLog,
  removeLog,
  setLogLimits,
  trimLog,
} from "./console_log.ts";

Deno.test("prepareLog() makes the log 0600 whatever the umask, and rotates a large one", async () => {
  const dir = await Deno.makeTempDir();
  const old = Deno.umask(0o022);
  try {
    const log = `${dir}/web.log`;
    await prepareLog(log);
    assert.equal((await Deno.stat(log)).mode! & 0o777, 0o600);
    await Deno.writeTextFile(log, "x".repeat(2000));
    await Deno.chmod(log, 0o644);
    await prepareLog(log, 1000);
    assert.equal((await Deno.stat(log)).size, 0);
    assert.equal((await Deno.stat(log)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${log}.1`)).size, 2000);
    await removeLog(log);
    await removeLog(log);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    Deno.umask(old);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trimLog() keeps the tail in .1 and empties the log under a writer that appends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = `${dir}/web.log`;
    // The VMM's side: a descriptor in append mode, held across the trim.
    const vmm = await Deno.open(log, { append: true, create: true, mode: 0o600 });
    await vmm.write(new TextEncoder().encode("a".repeat(1500) + "b".repeat(500)));
    assert.equal(await trimLog(log, 1000), true);
    assert.equal(await Deno.readTextFile(`${log}.1`), "a".repeat(500) + "b".repeat(500));
    await vmm.write(new TextEncoder().encode("after"));
    vmm.close();
    assert.equal(await Deno.readTextFile(log), "after");
    assert.equal(await trimLog(log, 1000), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logs rotate by size through <log>.1..N-1 and keep at most N files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = `${dir}/web.log`;
    const limits = { maxBytes: 100, files: 3 };
    const vmm = await Deno.open(log, { append: true, create: true, mode: 0o600 });
    for (const letter of ["a", "b", "c", "d"]) {
      await vmm.write(new TextEncoder().encode(letter.repeat(150)));
      assert.equal(await trimLog(log, limits), true);
    }
    vmm.close();
    // The live log and two rotated copies, newest first; "a" and "b" fell off the end.
    assert.equal(await Deno.readTextFile(log), "");
    assert.equal(await Deno.readTextFile(`${log}.1`), "d".repeat(100));
    assert.equal(await Deno.readTextFile(`${log}.2`), "c".repeat(100));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "web.log",
      "web.log.1",
      "web.log.2",
    ]);
    // At a start, a large log moves whole to .1 the same way.
    await Deno.writeTextFile(log, "e".repeat(150));
    await prepareLog(log, limits);
    assert.equal(await Deno.readTextFile(`${log}.1`), "e".repeat(150));
    assert.equal(await Deno.readTextFile(`${log}.2`), "d".repeat(100));
    // One file: the log is emptied, no copy kept.
    await Deno.writeTextFile(log, "f".repeat(150));
    assert.equal(await trimLog(log, { maxBytes: 100, files: 1 }), true);
    assert.equal(await Deno.readTextFile(log), "");
    // removeLog takes every rotated copy, however many a former setting left.
    await Deno.writeTextFile(`${log}.7`, "old");
    await Deno.writeTextFile(`${dir}/web.log.bak`, "not ours");
    await removeLog(log);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["web.log.bak"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setLogLimits() refuses sizes and counts out of range, naming the option", () => {
  assert.throws(
    () => setLogLimits({ maxBytes: 1000, files: 5 }),
    /--log-max-size must be at least/,
  );
  assert.throws(() => setLogLimits({ maxBytes: 1 << 20, files: 0 }), /--log-max-files must be/);
  setLogLimits({ maxBytes: 1 << 20, files: 2 });
  assert.deepEqual(logLimits(), { maxBytes: 1 << 20, files: 2 });
  setLogLimits({ ...DEFAULT_LOG_LIMITS });
  assert.deepEqual(logLimits(), { maxBytes: 10 * 1024 * 1024, files: 5 });
});
