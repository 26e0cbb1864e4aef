import assert from "node:assert/strict";
import { checkTrustedDirectory, UnsafeDirectoryError } from "./dir_safety.ts";

// Giving a directory to another user (chown) needs root.
const root = Deno.uid() === 0;

Deno.test({
  name:
    "checkTrustedDirectory() refuses another user's directory, a writable one, and an unsafe parent",
  ignore: !root,
  fn: async () => {
    const base = await Deno.makeTempDir({ prefix: "denovisor-dir-safety-" });
    try {
      const good = `${base}/good`;
      await Deno.mkdir(good, { mode: 0o700 });
      checkTrustedDirectory(good, "The socket directory");

      const theirs = `${base}/theirs`;
      await Deno.mkdir(theirs, { mode: 0o700 });
      await Deno.chown(theirs, 65534, 65534);
      assert.throws(
        () => checkTrustedDirectory(theirs, "The socket directory"),
        (e: Error) => e instanceof UnsafeDirectoryError && /is owned by uid 65534/.test(e.message),
      );

      const shared = `${base}/shared`;
      await Deno.mkdir(shared);
      await Deno.chmod(shared, 0o770);
      assert.throws(
        () => checkTrustedDirectory(shared, "The state directory"),
        /is writable by its group/,
      );

      // Inside a directory anyone may write to, without the sticky bit: refused...
      const open = `${base}/open`;
      await Deno.mkdir(`${open}/run`, { recursive: true, mode: 0o700 });
      await Deno.chmod(open, 0o777);
      assert.throws(
        () => checkTrustedDirectory(`${open}/run`, "The socket directory"),
        /writable by everyone without the sticky bit/,
      );
      // ... with it (as /tmp), accepted.
      await Deno.chmod(open, 0o1777);
      checkTrustedDirectory(`${open}/run`, "The socket directory");

      // Under a directory another user owns: refused.
      const foreign = `${base}/foreign`;
      await Deno.mkdir(`${foreign}/run`, { recursive: true, mode: 0o700 });
      await Deno.chown(foreign, 65534, 65534);
      assert.throws(
        () => checkTrustedDirectory(`${foreign}/run`, "The socket directory"),
        /\(above The socket directory .*\) is owned by uid 65534/,
      );
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
