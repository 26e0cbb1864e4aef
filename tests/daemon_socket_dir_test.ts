/**
 * The daemon refuses a socket directory that others may write to: anyone who can write
 * there could replace api.sock (or a domain's control socket) and read root's requests.
 */
import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";

for (const mode of [0o777, 0o1777, 0o722]) {
  Deno.test(`the daemon refuses a socket directory with mode ${mode.toString(8)}`, async () => {
    const root = await Deno.makeTempDir({ prefix: "denovisor-sockdir-test-" });
    try {
      const dir = `${root}/run`;
      await Deno.mkdir(dir);
      await Deno.chmod(dir, mode); // explicitly: the umask would clear the bits mkdir asks for
      const r = await denovisor(
        ["daemon", "--state-dir", `${root}/state`, "--socket", `${dir}/api.sock`],
        { timeoutMs: 60_000 },
      );
      assert.notEqual(r.code, 0, `the daemon started:\n${r.stdout}${r.stderr}`);
      assert.ok(r.code !== 137, "the daemon ran until the test killed it");
      assert.match(r.stderr, new RegExp(`${dir}.*(writable by|may write)`), r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      await assert.rejects(Deno.lstat(`${dir}/api.sock`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
