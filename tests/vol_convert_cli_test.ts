/**
 * `denovisor vol convert`: FORMAT as a word (`vol convert web raw`) or as --format, the
 * option `vol create`, `import`, `export` and `clone` take (the README once showed
 * `vol convert web --format raw`, which was refused). Through the pool API on a plain
 * directory, no daemon or KVM needed.
 */

import assert from "node:assert/strict";
import type { VolumeInfo } from "../manager/api_types.ts";
import { denovisor } from "./cli_support.ts";
import { withPoolApi, withTempDir } from "./pool_support.ts";

Deno.test("vol convert takes FORMAT as a word or as --format, and refuses both when they differ", async () => {
  await withTempDir(async (dir) => {
    await withPoolApi(dir, {}, async (socket) => {
      const cli = (...args: string[]) => denovisor([...args, "--socket", socket]);
      for (
        const args of [
          ["pool", "define", "default", "--type", "dir", "--path", `${dir}/p`],
          [
            "pool",
            "build",
            "default",
          ],
          ["pool", "start", "default"],
          ["vol", "create", "web", "1M", "--format", "qcow2"],
        ]
      ) {
        const result = await cli(...args);
        assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
      }
      const option = await cli("vol", "convert", "web", "--format", "raw");
      assert.equal(option.code, 0, option.stderr);
      assert.match(option.stdout, /^Volume web is now raw$/m);
      const word = await cli("vol", "convert", "web", "qcow2", "--json");
      assert.equal(word.code, 0, word.stderr);
      assert.equal((JSON.parse(word.stdout) as VolumeInfo).format, "qcow2");

      const both = await cli("vol", "convert", "web", "raw", "--format", "qcow2");
      assert.equal(both.code, 2);
      assert.match(both.stderr, /FORMAT 'raw' and --format 'qcow2' differ; give one/);
      const none = await cli("vol", "convert", "web");
      assert.equal(none.code, 2);
      assert.match(none.stderr, /vol convert: missing FORMAT; usage: /);
      const bad = await cli("vol", "convert", "web", "--format", "vmdk");
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /FORMAT 'vmdk' is not raw or qcow2/);
    });
  });
});
