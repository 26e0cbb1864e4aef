import assert from "node:assert/strict";
import { formatSize, parseSize, SizeError } from "./units.ts";
import { EXIT_STATUS, HTTP_STATUS } from "./errors.ts";

Deno.test("parseSize() reads units and treats a bare number as the given unit", () => {
  assert.equal(parseSize("512M", "--memory"), 512 * 1024 ** 2);
  assert.equal(parseSize("2G", "--memory"), 2 * 1024 ** 3);
  assert.equal(parseSize("1.5GiB", "--memory"), 1.5 * 1024 ** 3);
  assert.equal(parseSize(" 3 kib ", "size"), 3 * 1024);
  assert.equal(parseSize("1T", "size"), 1024 ** 4);
  assert.equal(parseSize("256", "--memory", "m"), 256 * 1024 ** 2);
  assert.equal(parseSize("4096", "size"), 4096);
});

Deno.test("parseSize() refuses malformed sizes with a coded SizeError naming what was read", () => {
  for (const bad of ["", "M", "12X", "-1G", "1e9", "1G2"]) {
    assert.throws(
      () => parseSize(bad, "--memory"),
      (e: unknown) =>
        e instanceof SizeError && e.code === "invalid" && e.what === "--memory" &&
        e.message === `--memory: ${e.reason}` && e.reason.includes(`'${bad}'`),
    );
  }
  assert.throws(() => parseSize("99999999T", "size"), /size: size '99999999T' is too large/);
  const error = new SizeError("memory", "x");
  assert.equal(HTTP_STATUS[error.code], 400);
  assert.equal(EXIT_STATUS[error.code], 6);
});

Deno.test("formatSize() prints binary units", () => {
  assert.equal(formatSize(512 * 1024 ** 2), "512 MiB");
  assert.equal(formatSize(1536 * 1024 ** 2), "1.5 GiB");
  assert.equal(formatSize(100), "100 B");
  assert.equal(formatSize(3 * 1024 ** 5), "3072 TiB");
});
