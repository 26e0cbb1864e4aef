import assert from "node:assert/strict";
import { join } from "node:path";
import { keepPoolLog, logTail } from "./vmm_run.ts";

Deno.test("keepPoolLog() puts what a pooled VMM said before its redirect into the domain's log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-pool-log-" });
  try {
    const slot = join(dir, "slot");
    await Deno.mkdir(slot);
    const domainLog = join(dir, "web.log");
    await Deno.writeTextFile(domainLog, "[t] denovisor daemon: VMM pid 7 taken from the pool\n");
    // Nothing said: the domain's log is left as it is.
    await keepPoolLog(slot, domainLog);
    await Deno.writeTextFile(join(slot, "pool.log"), "");
    await keepPoolLog(slot, domainLog);
    assert.equal((await Deno.readTextFile(domainLog)).split("\n").length, 2);
    // An order it could not follow: the reason ends the domain's log, as a start's error shows it.
    await Deno.writeTextFile(
      join(slot, "pool.log"),
      "denovisor: Cannot read /run/web/config.json: permission denied\n",
    );
    await keepPoolLog(slot, domainLog);
    const tail = await logTail(domainLog, 10);
    assert.match(tail, /Cannot read \/run\/web\/config\.json: permission denied$/);
    assert.match(tail, /the pooled VMM's output before it had this log/);
    assert.match(tail, /taken from the pool/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
