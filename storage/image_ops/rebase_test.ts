/** rebaseImage() judged by qemu-img: the overlay reads the same, on its new backing file. */
import assert from "node:assert/strict";
import { rebaseImage } from "./rebase.ts";
import { toolOk } from "./qemu_tools_test_support.ts";

function withChain(body: (dir: string, expected: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "rebase_" });
  try {
    toolOk("qemu-img", "create", "-q", "-f", "qcow2", `${dir}/base1.qcow2`, "4M");
    toolOk("qemu-io", "-c", "write -P 1 0 2M", "-c", "write -z 3M 64k", `${dir}/base1.qcow2`);
    toolOk("qemu-img", "create", "-q", "-f", "qcow2", `${dir}/base2.qcow2`, "3M");
    toolOk("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 9 1M 1M", `${dir}/base2.qcow2`);
    toolOk(
      "qemu-img",
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      "base1.qcow2",
      "-F",
      "qcow2",
      `${dir}/top.qcow2`,
    );
    toolOk("qemu-io", "-c", "write -P 2 64k 4k", "-c", "write -z 1536k 64k", `${dir}/top.qcow2`);
    toolOk("qemu-img", "convert", "-O", "raw", `${dir}/top.qcow2`, `${dir}/expected.raw`);
    body(dir, `${dir}/expected.raw`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function backingOf(path: string): unknown {
  return JSON.parse(toolOk("qemu-img", "info", "--output=json", path))["backing-filename"];
}

Deno.test("rebaseImage() keeps the overlay's contents on a different backing file", () =>
  withChain((dir, expected) => {
    const result = rebaseImage(`${dir}/top.qcow2`, "base2.qcow2");
    toolOk("qemu-img", "check", `${dir}/top.qcow2`);
    toolOk("qemu-img", "compare", `${dir}/top.qcow2`, expected);
    assert.equal(backingOf(`${dir}/top.qcow2`), "base2.qcow2");
    // Only the differing clusters (1M..2M and 3M..4M past base2's end) and top's own data.
    assert.ok(result.bytesWritten <= 1024 * 1024 + 65536 * 2, `${result.bytesWritten}`);
  }));

Deno.test("rebaseImage() to no backing file makes a standalone image", () =>
  withChain((dir, expected) => {
    rebaseImage(`${dir}/top.qcow2`, "");
    toolOk("qemu-img", "check", `${dir}/top.qcow2`);
    toolOk("qemu-img", "compare", `${dir}/top.qcow2`, expected);
    assert.equal(backingOf(`${dir}/top.qcow2`), undefined);
  }));

Deno.test("rebaseImage() unsafe only renames the backing file", () =>
  withChain((dir, expected) => {
    Deno.renameSync(`${dir}/base1.qcow2`, `${dir}/moved.qcow2`);
    const result = rebaseImage(`${dir}/top.qcow2`, "moved.qcow2", { unsafe: true });
    assert.equal(result.bytesWritten, 65536); // the one cluster top stores
    toolOk("qemu-img", "check", `${dir}/top.qcow2`);
    toolOk("qemu-img", "compare", `${dir}/top.qcow2`, expected);
    assert.equal(backingOf(`${dir}/top.qcow2`), "moved.qcow2");
  }));

Deno.test("rebaseImage() refuses a raw image and leaves nothing behind on failure", () =>
  withChain((dir) => {
    assert.throws(() => rebaseImage(`${dir}/expected.raw`, "base2.qcow2"), /only qcow2/);
    assert.throws(() => rebaseImage(`${dir}/top.qcow2`, "missing.qcow2"), /missing\.qcow2/);
    toolOk("qemu-img", "compare", `${dir}/top.qcow2`, `${dir}/expected.raw`);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["base1.qcow2", "base2.qcow2", "expected.raw", "top.qcow2"]);
  }));
