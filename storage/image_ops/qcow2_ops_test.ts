/**
 * The image operations on qcow2 images made by qemu-img, judged by qemu-img: outputs pass
 * `qemu-img check`, contents compare equal, and compareImages() agrees with
 * `qemu-img compare` on every pair.
 */
import assert from "node:assert/strict";
import { compareImages } from "./compare.ts";
import { commitImage } from "./commit.ts";
import { convertImage } from "./convert.ts";
import { resizeImage } from "./resize.ts";
import { mapImage } from "./map.ts";
import { runTool } from "./qemu_tools_test_support.ts";

const MiB = 1 << 20;

function qemuImg(...args: string[]): string {
  const r = runTool("qemu-img", ...args);
  assert.equal(r.code, 0, `qemu-img ${args.join(" ")}: ${r.output}`);
  return r.output;
}

function qemuIo(path: string, ...commands: string[]): void {
  const r = runTool("qemu-io", "-f", "qcow2", ...commands.flatMap((c) => ["-c", c]), path);
  assert.equal(r.code, 0, r.output);
}

function assertClean(path: string): void {
  const r = runTool("qemu-img", "check", path);
  assert.equal(r.code, 0, `qemu-img check ${path}: ${r.output}`);
}

function assertSame(a: string, b: string): void {
  const r = runTool("qemu-img", "compare", a, b);
  assert.equal(r.code, 0, `qemu-img compare ${a} ${b}: ${r.output}`);
}

function withDir(body: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "image_ops_" });
  try {
    body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function chain(dir: string): { base: string; top: string } {
  const base = `${dir}/base.qcow2`;
  const top = `${dir}/top.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", base, "8M");
  qemuIo(base, "write -P 0x11 0 1M", "write -P 0x33 3M 100k", "write -z 6M 64k");
  qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
  qemuIo(top, "write -P 0x22 512k 4k", "write -z 3M 64k", "write -P 0x44 7M 1M");
  return { base, top };
}

Deno.test("convertImage() output passes qemu-img check at cluster sizes 4k, 64k and 2M", () =>
  withDir((dir) => {
    const { top } = chain(dir);
    for (const clusterSize of [4096, 65536, 2 * MiB]) {
      const out = `${dir}/out-${clusterSize}.qcow2`;
      convertImage(top, out, { format: "qcow2", clusterSize });
      assertClean(out);
      assertSame(out, top);
    }
    convertImage(top, `${dir}/flat.raw`, { format: "raw" });
    assertSame(`${dir}/flat.raw`, top);
    // Only data was written: the 4 KiB cluster image holds about 2.1 MiB, not 8.
    const blocks = Deno.statSync(`${dir}/out-4096.qcow2`).blocks! * 512;
    assert.ok(blocks < 3 * MiB, `${blocks} bytes on disk`);
  }));

Deno.test("compareImages() agrees with qemu-img compare, strict mode and sizes included", () =>
  withDir((dir) => {
    const { base, top } = chain(dir);
    const bigger = `${dir}/bigger.qcow2`;
    convertImage(top, bigger, { format: "qcow2" });
    qemuImg("resize", "-q", bigger, "9M");
    const dirty = `${dir}/dirty.qcow2`;
    convertImage(top, dirty, { format: "qcow2" });
    qemuImg("resize", "-q", dirty, "9M");
    qemuIo(dirty, "write -P 1 8700000 1");
    const pairs: [string, string, boolean][] = [
      [top, base, false],
      [top, top, false],
      [top, bigger, false],
      [top, bigger, true],
      [dirty, top, false],
      [base, dirty, false],
    ];
    for (const [a, b, strict] of pairs) {
      const theirs = runTool("qemu-img", "compare", ...(strict ? ["-s"] : []), a, b);
      const ours = compareImages(a, b, { strict });
      assert.equal(ours.equal ? 0 : 1, theirs.code, `${a} ${b}: ${theirs.output}`);
      const offset = /Content mismatch at offset (\d+)!/.exec(theirs.output)?.[1];
      if (offset !== undefined) assert.equal(ours.firstDifference, Number(offset));
    }
  }));

Deno.test("commitImage() leaves a base equal to what qemu-img commit makes, and an empty overlay", () =>
  withDir((dir) => {
    const { base, top } = chain(dir);
    Deno.mkdirSync(`${dir}/q`);
    const theirs = chain(`${dir}/q`);
    // The overlay is larger than its base: both commits grow the base.
    qemuImg("resize", "-q", top, "10M");
    qemuImg("resize", "-q", theirs.top, "10M");
    qemuIo(top, "write -P 0x55 9M 64k");
    qemuIo(theirs.top, "write -P 0x55 9M 64k");
    const expected = `${dir}/expected.raw`;
    qemuImg("convert", "-O", "raw", top, expected);
    const seen: number[] = [];
    commitImage(top, { onProgress: (done) => seen.push(done) });
    assert.equal(seen.at(-1), 10 * MiB);
    qemuImg("commit", "-q", theirs.top);
    assertClean(base);
    assertClean(top);
    assertSame(base, theirs.base);
    assertSame(base, expected);
    assertSame(top, expected);
    assert.ok(mapImage(top).every((e) => e.depth >= 1 || !e.present));
  }));

Deno.test("commitImage() refuses an image without a backing file", () =>
  withDir((dir) => {
    const { base } = chain(dir);
    assert.throws(() => commitImage(base), /has no backing file/);
  }));

Deno.test("resizeImage() grows a qcow2 image that qemu-img then checks clean", () =>
  withDir((dir) => {
    const { base } = chain(dir);
    assert.deepEqual(resizeImage(base, 3 * 1024 * MiB), {
      oldSize: 8 * MiB,
      newSize: 3 * 1024 * MiB,
    });
    assertClean(base);
    qemuIo(base, "read -P 0x11 0 1M", "read -P 0 2G 1M");
    assert.throws(() => resizeImage(base, MiB), /--shrink/);
    assert.throws(() => resizeImage(base, 4 * 1024 * MiB + 1000), /multiple of 512/);
  }));

Deno.test("resizeImage() grows an overlay over a longer base with zeroes, not the base's bytes", () =>
  withDir((dir) => {
    qemuImg("create", "-q", "-f", "qcow2", `${dir}/base.qcow2`, "16M");
    qemuIo(`${dir}/base.qcow2`, "write -P 5 0 16M");
    for (const name of ["ours", "theirs"]) {
      const args = ["-b", "base.qcow2", "-F", "qcow2", `${dir}/${name}.qcow2`, "8M"];
      qemuImg("create", "-q", "-f", "qcow2", ...args);
    }
    resizeImage(`${dir}/ours.qcow2`, 20 * MiB);
    qemuImg("resize", "-q", `${dir}/theirs.qcow2`, "20M");
    assertClean(`${dir}/ours.qcow2`);
    assertSame(`${dir}/ours.qcow2`, `${dir}/theirs.qcow2`);
    qemuIo(`${dir}/ours.qcow2`, "read -P 5 0 8M", "read -P 0 8M 12M");
  }));
