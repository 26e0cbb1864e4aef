/**
 * `denovisor daemon --log-max-size/--log-max-files`: a value out of range is a usage
 * error (exit 2) before anything starts; the rotation itself is tested in
 * manager/daemon/console_log_test.ts.
 */

import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";

Deno.test("daemon refuses log limits out of range with a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-log-options-" });
  try {
    const where = ["--state-dir", `${dir}/state`, "--socket", `${dir}/api.sock`];
    const small = await denovisor(["daemon", "--log-max-size", "1K", ...where]);
    assert.equal(small.code, 2, small.stderr);
    assert.match(small.stderr, /daemon: --log-max-size must be at least 64 KiB/);
    const files = await denovisor(["daemon", "--log-max-files", "many", ...where]);
    assert.equal(files.code, 2, files.stderr);
    assert.match(files.stderr, /daemon: --log-max-files must be a whole number from 1 to 100/);
    const size = await denovisor(["daemon", "--log-max-size", "lots", ...where]);
    assert.equal(size.code, 2, size.stderr);
    assert.match(size.stderr, /--log-max-size/);
    // Nothing was started: no socket, no state directory.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    const help = await denovisor(["daemon", "--help"]);
    assert.match(help.stdout, /--log-max-size SIZE .*default 10M/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
