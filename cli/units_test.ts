import assert from "node:assert/strict";
import { formatSize, parseSize } from "./units.ts";
import { UsageError } from "./usage_error.ts";

Deno.test("parseSize() reads units and treats a bare number as the given unit", () => {
  assert.equal(parseSize("512M", "--memory"), 512 * 1024 ** 2);
  assert.equal(parseSize("2G", "--memory"), 2 * 1024 ** 3);
  assert.equal(parseSize("1.5GiB", "--memory"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("256", "--memory", "m"), 256 * 1024 ** 2);
  assert.equal(parseSize("4096", "size"), 4096);
});

Deno.test("parseSize() refuses malformed sizes with the option's name", () => {
  for (const bad of ["", "M", "12X", "-1G", "1e9", "1G2"]) {
    assert.throws(
      () => parseSize(bad, "--memory"),
      (e: Error) => e instanceof UsageError && e.message.startsWith("--memory:"),
    );
  }
});

Deno.test("formatSize() prints binary units", () => {
  assert.equal(formatSize(512 * 1024 ** 2), "512 MiB");
  assert.equal(formatSize(1536 * 1024 ** 2), "1.5 GiB");
  assert.equal(formatSize(100), "100 B");
});
