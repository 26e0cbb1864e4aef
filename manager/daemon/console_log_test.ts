import assert from "node:assert/strict";
import { prepareLog, removeLog, trimLog } from "./console_log.ts";

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
