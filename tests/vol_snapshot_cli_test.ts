/**
 * `denovisor vol snapshot`, `pool snapshot` and the rollbacks, as an operator meets them:
 * a snapshot says when it turned a raw volume into a qcow2 overlay, and a rollback that
 * would delete later snapshots is refused with their names unless `--drop-newer`. Through
 * the pool API on a plain directory, no daemon or KVM needed.
 */

import assert from "node:assert/strict";
import { CLIENT_EXIT } from "../cli/output.ts";
import { denovisor } from "./cli_support.ts";
import { withPoolApi, withTempDir } from "./pool_support.ts";

Deno.test("vol/pool snapshot name the raw volumes they overlay; rollback keeps later snapshots unless --drop-newer", async () => {
  await withTempDir(async (dir) => {
    await withPoolApi(dir, {}, async (socket) => {
      const cli = (...args: string[]) => denovisor([...args, "--socket", socket]);
      const ok = async (...args: string[]) => {
        const result = await cli(...args);
        assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
        return result.stdout;
      };
      await ok("pool", "define", "default", "--type", "dir", "--path", `${dir}/p`);
      await ok("pool", "build", "default");
      await ok("pool", "start", "default");
      await ok("vol", "create", "web", "1M", "--format", "raw");
      await ok("vol", "create", "db", "1M", "--format", "raw");
      await ok("vol", "create", "logs", "1M", "--format", "qcow2");

      assert.equal(
        (await ok("vol", "snapshot", "web", "s1")).trim(),
        "Snapshot s1 of volume web taken; the raw volume is now a qcow2 overlay on it " +
          "(vol commit merges it back)",
      );
      assert.equal(
        (await ok("vol", "snapshot", "web", "s2")).trim(),
        "Snapshot s2 of volume web taken",
      );
      assert.equal(
        (await ok("pool", "snapshot", "default", "nightly")).trim(),
        "Snapshot nightly of pool default taken (3 volumes); raw volumes now qcow2 overlays " +
          "on it: db (vol commit merges one back)",
      );

      const refused = await cli("vol", "rollback", "web", "s1");
      assert.equal(refused.code, CLIENT_EXIT.CONFLICT, refused.stderr);
      assert.match(
        refused.stderr,
        /Rolling volume 'web' back to 's1' deletes its later snapshots 's2', 'nightly'; add --drop-newer/,
      );
      const kept = JSON.parse(await ok("vol", "info", "web", "--json"));
      assert.deepEqual(kept.snapshots, ["s1", "s2", "nightly"]);
      assert.equal(
        (await ok("vol", "rollback", "web", "s1", "--drop-newer")).trim(),
        "Volume web rolled back to s1",
      );
      assert.deepEqual(JSON.parse(await ok("vol", "info", "web", "--json")).snapshots, ["s1"]);
      // The pool's rollback too (db and logs have only 'nightly', the newest: nothing dropped).
      await ok("pool", "rollback", "default", "nightly");
    });
  });
});
