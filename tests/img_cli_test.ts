/**
 * `denovisor img` end to end, with qemu-img (Debian qemu-utils) as the judge: images it
 * writes pass `qemu-img check` and compare equal to what qemu-img produces, `info` agrees
 * with `qemu-img info`, and bad input gets qemu-img's exit statuses and clear messages.
 */
import assert from "node:assert/strict";
import { type CliResult, denovisor } from "./cli_support.ts";

const MiB = 1 << 20;

async function qemuImg(...args: string[]): Promise<CliResult> {
  const { code, stdout, stderr } = await new Deno.Command("qemu-img", { args }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

async function qemuIo(path: string, format: string, ...commands: string[]): Promise<void> {
  const args = ["-f", format, ...commands.flatMap((c) => ["-c", c]), path];
  const r = await new Deno.Command("qemu-io", { args }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

async function ok(...args: string[]): Promise<CliResult> {
  const r = await denovisor(["img", ...args]);
  assert.equal(r.code, 0, `denovisor img ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function qemuOk(...args: string[]): Promise<CliResult> {
  const r = await qemuImg(...args);
  assert.equal(r.code, 0, `qemu-img ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function assertSame(a: string, b: string): Promise<void> {
  const r = await qemuImg("compare", a, b);
  assert.equal(r.code, 0, `qemu-img compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

async function assertClean(path: string): Promise<void> {
  const r = await qemuImg("check", path);
  assert.equal(r.code, 0, `qemu-img check ${path}: ${r.stdout}${r.stderr}`);
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "img_cli_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A qcow2 chain made by qemu: base (data, zeroes) <- top (data over part of it). */
async function qemuChain(dir: string): Promise<{ base: string; top: string }> {
  const base = `${dir}/base.qcow2`;
  const top = `${dir}/top.qcow2`;
  await qemuOk("create", "-q", "-f", "qcow2", base, "16M");
  await qemuIo(base, "qcow2", "write -P 0x11 0 1M", "write -P 0x33 5M 256k", "write -z 8M 64k");
  await qemuOk("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
  await qemuIo(top, "qcow2", "write -P 0x22 512k 4k", "write -z 5M 64k", "write -P 0x44 12M 1M");
  return { base, top };
}

Deno.test("img --help lists the subcommands and each subcommand has --help", async () => {
  const help = await ok("--help");
  const subcommands = [
    "create",
    "info",
    "check",
    "convert",
    "resize",
    "commit",
    "rebase",
    "compare",
    "map",
    "measure",
    "dd",
    "snapshot",
  ];
  for (const sub of subcommands) {
    assert.match(help.stdout, new RegExp(`^  ${sub} `, "m"));
  }
  for (const sub of ["create", "convert", "resize"]) {
    assert.match((await ok(sub, "--help")).stdout, new RegExp(`^Usage: denovisor img ${sub} `));
  }
  assert.match((await ok("create", "-o", "help")).stdout, /cluster_size=SIZE/);
});

Deno.test("img info prints what qemu-img info prints, byte for byte: human and JSON, chains, snapshots", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    const raw = `${dir}/disk.raw`;
    await qemuOk("create", "-q", "-f", "raw", raw, "3M");
    const old = `${dir}/old.qcow2`;
    await qemuOk("create", "-q", "-f", "qcow2", "-o", "compat=0.10", old, "1G");
    await qemuOk("snapshot", "-c", "first", old);
    for (const path of [top, raw, old]) {
      for (const chain of [[], ["--backing-chain"]]) {
        for (const output of [["--output=json"], ["--output=human"]]) {
          const ours = await ok("info", ...output, ...chain, path);
          const theirs = await qemuOk("info", ...output, ...chain, path);
          assert.equal(ours.stdout, theirs.stdout, `${path} ${chain} ${output}`);
        }
      }
    }
    // Relative names are shown joined to the overlay's name as given, as qemu-img does.
    const relative = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "img",
        "info",
        "top.qcow2",
      ],
      cwd: dir,
    }).output();
    assert.match(new TextDecoder().decode(relative.stdout), /^backing file: base\.qcow2$/m);
  }));

Deno.test("img convert writes images that qemu-img checks clean and compares equal to its own", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    const ours = `${dir}/ours.qcow2`;
    const theirs = `${dir}/theirs.qcow2`;
    // -t/-T/-W as scripts pass them to qemu-img are accepted.
    const progress = await ok(
      "convert",
      "-t",
      "none",
      "-W",
      "-p",
      "-O",
      "qcow2",
      "-o",
      "cluster_size=4k",
      top,
      ours,
    );
    assert.match(progress.stdout, /\(100\.00\/100%\)\n$/);
    await qemuOk("convert", "-O", "qcow2", top, theirs);
    await assertClean(ours);
    await assertSame(ours, theirs);
    const info = JSON.parse((await qemuOk("info", "--output=json", ours)).stdout);
    assert.equal(info["cluster-size"], 4096);
    assert.equal(info["backing-filename"], undefined);
    // Sparse: about 2.3 MiB of data in a 16 MiB disk.
    assert.ok(info["actual-size"] < 4 * MiB, `${info["actual-size"]} bytes on disk`);
    // qcow2 -> raw and back to qcow2 round-trips.
    await ok("convert", "-f", "qcow2", "-O", "raw", ours, `${dir}/flat.raw`);
    await assertSame(`${dir}/flat.raw`, theirs);
    await ok("convert", "-O", "qcow2", `${dir}/flat.raw`, `${dir}/again.qcow2`);
    await assertClean(`${dir}/again.qcow2`);
    await assertSame(`${dir}/again.qcow2`, top);
    // -B: an overlay holding only what top stores itself.
    await ok(
      "convert",
      "-O",
      "qcow2",
      "-B",
      "base.qcow2",
      "-F",
      "qcow2",
      top,
      `${dir}/new_top.qcow2`,
    );
    await assertClean(`${dir}/new_top.qcow2`);
    await assertSame(`${dir}/new_top.qcow2`, top);
    // A raw source's holes are stored zeroes: they must not show the backing's data.
    await ok(
      "convert",
      "-O",
      "qcow2",
      "-B",
      "base.qcow2",
      "-F",
      "qcow2",
      `${dir}/flat.raw`,
      `${dir}/over.qcow2`,
    );
    await assertSame(`${dir}/over.qcow2`, `${dir}/flat.raw`);
    const map = JSON.parse((await qemuOk("map", "--output=json", `${dir}/new_top.qcow2`)).stdout);
    const own = map.filter((e: { depth: number; data: boolean }) => e.depth === 0 && e.data);
    assert.deepEqual(own.map((e: { start: number }) => e.start), [512 * 1024, 12 * MiB]);
  }));

Deno.test("img commit merges an overlay into its base as qemu-img commit does", () =>
  withDir(async (dir) => {
    const { base, top } = await qemuChain(dir);
    await Deno.mkdir(`${dir}/q`);
    await qemuChain(`${dir}/q`);
    const expected = `${dir}/expected.raw`;
    await qemuOk("convert", "-O", "raw", top, expected);
    const committed = await ok("commit", "-p", top);
    assert.match(committed.stdout, /Image committed\.\n$/);
    await qemuOk("commit", "-q", `${dir}/q/top.qcow2`);
    await assertClean(base);
    await assertClean(top);
    await assertSame(base, expected);
    await assertSame(base, `${dir}/q/base.qcow2`);
    await assertSame(top, expected);
    // The overlay was emptied: nothing is stored in it any more.
    const map = JSON.parse((await qemuOk("map", "--output=json", top)).stdout);
    assert.ok(map.every((e: { depth: number }) => e.depth >= 1), JSON.stringify(map));
  }));

Deno.test("img rebase moves an overlay onto another base, reading the same as before", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    const expected = `${dir}/expected.raw`;
    await qemuOk("convert", "-O", "raw", top, expected);
    await qemuOk("create", "-q", "-f", "qcow2", `${dir}/other.qcow2`, "16M");
    await qemuIo(`${dir}/other.qcow2`, "qcow2", "write -P 0x11 0 2M");
    await ok("rebase", "-p", "-b", "other.qcow2", "-F", "qcow2", top);
    await assertClean(top);
    await assertSame(top, expected);
    const info = JSON.parse((await qemuOk("info", "--output=json", top)).stdout);
    assert.equal(info["backing-filename"], "other.qcow2");
    const missing = await denovisor(["img", "rebase", top]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing -b BACKING/);
  }));

Deno.test("img map prints what qemu-img map prints, host offsets included", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    const raw = `${dir}/holes.raw`;
    await qemuOk("create", "-q", "-f", "raw", raw, "4M");
    await qemuIo(raw, "raw", "write -P 1 1M 64k");
    const flat = `${dir}/flat.qcow2`;
    await ok("convert", "-O", "qcow2", top, flat);
    for (const path of [top, raw, flat]) {
      for (const output of [[], ["--output=json"]]) {
        const ours = await ok("map", ...output, path);
        assert.equal(ours.stdout, (await qemuOk("map", ...output, path)).stdout, path);
      }
    }
    assert.ok((await ok("map", "--output=json", top)).stdout.split("\n").length >= 6);
  }));

Deno.test("img measure prints what qemu-img measure prints", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    for (
      const args of [["-O", "qcow2", top], ["--output=json", "-O", "qcow2", top], [
        "-O",
        "qcow2",
        "--size",
        "10G",
      ]]
    ) {
      assert.equal(
        (await ok("measure", ...args)).stdout,
        (await qemuOk("measure", ...args)).stdout,
      );
    }
  }));

Deno.test("img dd copies the blocks qemu-img dd copies", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    for (
      const args of [["-O", "qcow2", "bs=64k", "count=100", "skip=4"], ["bs=1M", "skip=2"], [
        "count=3",
      ]]
    ) {
      await ok("dd", ...args, `if=${top}`, `of=${dir}/ours`);
      await qemuOk("dd", ...args, `if=${top}`, `of=${dir}/theirs`);
      await assertSame(`${dir}/ours`, `${dir}/theirs`);
      const size = async (path: string) =>
        JSON.parse((await qemuOk("info", "--output=json", path)).stdout)["virtual-size"];
      assert.equal(await size(`${dir}/ours`), await size(`${dir}/theirs`), args.join(" "));
    }
  }));

Deno.test("img snapshot creates, lists, applies and deletes snapshots qemu-img agrees with", () =>
  withDir(async (dir) => {
    const { base } = await qemuChain(dir);
    const before = `${dir}/before.raw`;
    await qemuOk("convert", "-O", "raw", base, before);
    await ok("snapshot", "-c", "clean", base);
    await assertClean(base);
    const listed = await ok("snapshot", "-l", base);
    assert.equal(listed.stdout, (await qemuOk("snapshot", "-l", base)).stdout);
    assert.match(listed.stdout, /^1 +clean +0 B /m);
    await qemuIo(base, "qcow2", "write -P 0x99 0 3M", "write -z 6M 1M");
    await qemuOk("snapshot", "-c", "dirty", base); // one made by qemu-img, too
    await ok("snapshot", "-a", "clean", base);
    await assertClean(base);
    await assertSame(base, before);
    await ok("snapshot", "-a", "dirty", base);
    await assertClean(base);
    await qemuIo(base, "qcow2", "read -P 0x99 0 3M");
    await ok("snapshot", "-d", "clean", base);
    await ok("snapshot", "-d", "2", base);
    await assertClean(base);
    assert.equal((await ok("snapshot", "-l", base)).stdout, "");
    const missing = await denovisor(["img", "snapshot", "-a", "clean", base]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no snapshot clean/);
    const two = await denovisor(["img", "snapshot", "-c", "a", "-d", "b", base]);
    assert.equal(two.code, 2);
  }));

Deno.test("img resize grows qcow2 and raw like qemu-img; shrinking needs --shrink", () =>
  withDir(async (dir) => {
    const qcow2 = `${dir}/d.qcow2`;
    await ok("create", "-q", "-f", "qcow2", qcow2, "10M");
    await qemuIo(qcow2, "qcow2", "write -P 7 9M 1M");
    assert.match((await ok("resize", qcow2, "+1G")).stdout, /^Image resized\.\n$/);
    await assertClean(qcow2);
    const info = JSON.parse((await qemuOk("info", "--output=json", qcow2)).stdout);
    assert.equal(info["virtual-size"], 10 * MiB + 1024 * MiB);
    await qemuIo(qcow2, "qcow2", "read -P 7 9M 1M", "read -P 0 10M 1M");
    const raw = `${dir}/d.raw`;
    await ok("create", "-f", "raw", raw, "4M");
    const refused = await denovisor(["img", "resize", raw, "-1M"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--shrink/);
    assert.equal((await Deno.stat(raw)).size, 4 * MiB);
    await ok("resize", "--shrink", raw, "-1M");
    assert.equal((await Deno.stat(raw)).size, 3 * MiB);
    await ok("resize", raw, "5M");
    assert.equal((await Deno.stat(raw)).size, 5 * MiB);
  }));

Deno.test("img create makes images qemu-img accepts: options, overlays, preallocation", () =>
  withDir(async (dir) => {
    const base = `${dir}/base.qcow2`;
    const made = await ok(
      "create",
      "-f",
      "qcow2",
      "-o",
      "cluster_size=128k,preallocation=metadata",
      base,
      "64M",
    );
    await assertClean(base);
    const theirs = await qemuOk(
      "create",
      "-f",
      "qcow2",
      "-o",
      "cluster_size=128k,preallocation=metadata",
      `${dir}/q.qcow2`,
      "64M",
    );
    // The same "Formatting ..." line as qemu-img create.
    assert.equal(made.stdout, theirs.stdout.replace("q.qcow2", "base.qcow2"));
    const overlay = `${dir}/overlay.qcow2`;
    await ok("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay);
    await assertClean(overlay);
    const info = JSON.parse((await qemuOk("info", "--output=json", overlay)).stdout);
    assert.equal(info["virtual-size"], 64 * MiB);
    assert.equal(info["backing-filename"], "base.qcow2");
    assert.equal(info["backing-filename-format"], "qcow2");
    // -u: the backing file need not exist yet.
    const early = await ok(
      "create",
      "-f",
      "qcow2",
      "-u",
      "-b",
      "later.qcow2",
      "-F",
      "qcow2",
      `${dir}/early.qcow2`,
      "1G",
    );
    assert.match(early.stdout, /backing_file=later\.qcow2 backing_fmt=qcow2/);
    assert.equal(
      (await denovisor([
        "img",
        "create",
        "-f",
        "qcow2",
        "-u",
        "-b",
        "later.qcow2",
        `${dir}/e2.qcow2`,
      ])).code,
      2,
    );
    // Replaced, as qemu-img create does.
    await ok("create", "-q", "-f", "raw", overlay, "1M");
    assert.equal((await Deno.stat(overlay)).size, MiB);
  }));

Deno.test("img check and compare exit with qemu-img's statuses", () =>
  withDir(async (dir) => {
    const { base, top } = await qemuChain(dir);
    const clean = await ok("check", top);
    assert.equal(clean.stdout, (await qemuImg("check", top)).stdout);
    const compressed = `${dir}/compressed.qcow2`;
    await qemuOk("convert", "-c", "-O", "qcow2", top, compressed);
    const counted = JSON.parse((await ok("check", "--output=json", compressed)).stdout);
    const expected = JSON.parse((await qemuImg("check", "--output=json", compressed)).stdout);
    assert.equal(counted["compressed-clusters"], expected["compressed-clusters"]);
    assert.ok(counted["compressed-clusters"] > 0);
    const json = JSON.parse((await ok("check", "--output", "json", top)).stdout);
    assert.equal(json.format, "qcow2");
    assert.equal(json["check-errors"], 0);
    await Deno.writeFile(`${dir}/r.raw`, new Uint8Array(4096));
    assert.equal((await denovisor(["img", "check", `${dir}/r.raw`])).code, 63);
    const truncated = `${dir}/truncated.qcow2`;
    await Deno.writeFile(truncated, (await Deno.readFile(top)).subarray(0, 50));
    const notCompleted = await denovisor(["img", "check", truncated]);
    assert.equal(notCompleted.code, 1); // qemu-img: 1, the check could not be completed
    assert.match(notCompleted.stderr, /truncated/);
    const different = await denovisor(["img", "compare", top, base]);
    assert.equal(different.code, 1);
    assert.equal(different.stdout, (await qemuImg("compare", top, base)).stdout);
    const same = await ok("compare", top, top);
    assert.equal(same.stdout, "Images are identical.\n");
    const missing = await denovisor(["img", "compare", top, `${dir}/missing`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing: no such file/);
  }));

/** Sets the L2 entry of guest cluster 0 (64 KiB clusters) of a qcow2 file to `entry`. */
async function setFirstL2Entry(path: string, entry: bigint): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    const read = async (offset: number) => {
      const bytes = new Uint8Array(8);
      await file.seek(offset, Deno.SeekMode.Start);
      await file.read(bytes);
      return new DataView(bytes.buffer).getBigUint64(0);
    };
    const l1 = Number(await read(40));
    const l2 = Number((await read(l1)) & 0x00ff_ffff_ffff_fe00n);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, entry);
    await file.seek(l2, Deno.SeekMode.Start);
    await file.write(bytes);
  } finally {
    file.close();
  }
}

Deno.test("img check exits 3 for leaks and 2 for corruption as qemu-img does; -r leaks repairs", () =>
  withDir(async (dir) => {
    const leaky = `${dir}/leaky.qcow2`;
    await qemuOk("create", "-q", "-f", "qcow2", leaky, "4M");
    await qemuIo(leaky, "qcow2", "write -P 5 0 64k");
    await setFirstL2Entry(leaky, 0n); // the data cluster is still counted: a leak
    const leak = await denovisor(["img", "check", leaky]);
    assert.equal(leak.code, (await qemuImg("check", leaky)).code);
    assert.equal(leak.code, 3);
    assert.match(leak.stdout, /1 leaked clusters were found on the image/);
    const repaired = await denovisor(["img", "check", "-r", "leaks", leaky]);
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
    await assertClean(leaky);
    const broken = `${dir}/broken.qcow2`;
    await qemuOk("create", "-q", "-f", "qcow2", broken, "4M");
    await qemuIo(broken, "qcow2", "write -P 5 0 64k");
    await setFirstL2Entry(broken, 0x8000_0000_0100_0000n); // copied, beyond the file's end
    const corrupt = await denovisor(["img", "check", broken]);
    assert.equal(corrupt.code, (await qemuImg("check", broken)).code);
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.stdout, /errors were found on the image/);
  }));

Deno.test("img convert onto a full file system fails with ENOSPC and leaves nothing behind", () =>
  withDir(async (dir) => {
    // Needs root to mount a 1 MiB tmpfs (CI runs as root).
    await Deno.mkdir(`${dir}/small`);
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", `${dir}/small`],
    }).output();
    assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
    try {
      const source = `${dir}/data.raw`;
      await qemuOk("create", "-q", "-f", "raw", source, "4M");
      await qemuIo(source, "raw", "write -P 9 0 4M");
      for (const format of ["raw", "qcow2"]) {
        const out = `${dir}/small/out.${format}`;
        const r = await denovisor(["img", "convert", "-O", format, source, out]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /no space left on device/);
        assert.match(r.stderr, new RegExp(`out\\.${format}`));
        assert.deepEqual([...Deno.readDirSync(`${dir}/small`)], []);
      }
    } finally {
      await new Deno.Command("umount", { args: [`${dir}/small`] }).output();
    }
  }));

Deno.test("img convert -n writes an image onto a block device (a loop device), zeroes included", () =>
  withDir(async (dir) => {
    // Needs root for losetup (CI runs as root).
    const backing = `${dir}/device.img`;
    await Deno.writeFile(backing, new Uint8Array(16 * MiB).fill(0xff));
    const attach = await new Deno.Command("losetup", { args: ["--find", "--show", backing] })
      .output();
    assert.equal(attach.code, 0, new TextDecoder().decode(attach.stderr));
    const device = new TextDecoder().decode(attach.stdout).trim();
    try {
      const { top } = await qemuChain(dir);
      await ok("convert", "-n", "-O", "raw", top, device);
      const expected = `${dir}/expected.raw`;
      await qemuOk("convert", "-O", "raw", top, expected);
      const written = await Deno.readFile(device);
      assert.deepEqual(written, await Deno.readFile(expected)); // 16 MiB, all of it
      const refused = await denovisor(["img", "convert", "-O", "raw", top, device]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /not a regular file/);
    } finally {
      await new Deno.Command("losetup", { args: ["-d", device] }).output();
    }
  }));

Deno.test("img refuses to change an image another process has open read-write", () =>
  withDir(async (dir) => {
    const { top } = await qemuChain(dir);
    // A stand-in for a running VM: a process holding the overlay open (and locked).
    const image = new URL("../storage/image.ts", import.meta.url).href;
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openImage } from "${image}"; openImage(${JSON.stringify(top)}); ` +
        `console.log("open"); setTimeout(() => {}, 60000);`,
      ],
      stdout: "piped",
    }).spawn();
    try {
      const reader = holder.stdout.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /open/);
      reader.releaseLock();
      for (
        const args of [["resize", top, "+1M"], ["commit", top], ["create", "-f", "raw", top, "1M"]]
      ) {
        const r = await denovisor(["img", ...args]);
        assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /in use by another process/, args.join(" "));
      }
      assert.equal((await ok("info", top)).code, 0); // info takes no lock
    } finally {
      holder.kill();
      await holder.status;
      await holder.stdout.cancel().catch(() => {});
    }
    await assertClean(top);
  }));

Deno.test("img convert killed midway leaves the existing output as it was", () =>
  withDir(async (dir) => {
    const source = `${dir}/big.raw`;
    await qemuOk("create", "-q", "-f", "raw", source, "256M");
    await qemuIo(source, "raw", "write -P 7 0 256M");
    const output = `${dir}/out.qcow2`;
    await qemuOk("create", "-q", "-f", "qcow2", output, "1M");
    const before = await Deno.readFile(output);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "img",
        "convert",
        "-O",
        "qcow2",
        source,
        output,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Stop it once the new image is being built beside the output. If the temporary file
    // still exists while the process is stopped, the rename has not happened and cannot any
    // more: the kill lands midway. Otherwise the conversion finished first.
    const temporary = () =>
      [...Deno.readDirSync(dir)].some((e) => e.name.startsWith(".out.qcow2.convert"));
    let building = false;
    for (let i = 0; i < 3000 && !building; i++) {
      building = temporary();
      if (!building) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill("SIGSTOP");
    const midway = temporary();
    child.kill("SIGKILL");
    const status = await child.status;
    assert.ok(building, "the conversion never started");
    if (midway) {
      assert.equal(status.signal, "SIGKILL");
      assert.deepEqual(await Deno.readFile(output), before); // untouched
      await assertClean(output);
    } else {
      // It renamed the finished image into place before it was stopped: all of it is there.
      await assertClean(output);
      await assertSame(source, output);
    }
  }));

Deno.test("img commit killed midway leaves the overlay reading as before and both images clean", () =>
  withDir(async (dir) => {
    const base = `${dir}/base.qcow2`;
    const top = `${dir}/top.qcow2`;
    await qemuOk("create", "-q", "-f", "qcow2", base, "128M");
    await qemuIo(base, "qcow2", "write -P 1 0 128M");
    await qemuOk("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
    await qemuIo(top, "qcow2", "write -P 2 16M 96M");
    const expected = `${dir}/expected.raw`;
    await qemuOk("convert", "-O", "raw", top, expected);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "img",
        "commit",
        "-p",
        top,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Kill it once it reports progress past the start.
    const reader = child.stdout.getReader();
    let text = "";
    while (!/\((?:[1-9]\d?\.\d\d)\/100%\)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    await child.status; // killed midway here (progress 1..99%), or done if it was quicker
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await assertClean(base);
    await assertClean(top);
    await assertSame(top, expected);
  }));

Deno.test("img refuses bad input with one line and the right status", async () => {
  const cases: [string[], number, RegExp][] = [
    [["info", "/nonexistent/disk.qcow2"], 1, /no such file/],
    [
      ["create", "-f", "qcow3", "/tmp/x.img", "1M"],
      2,
      /unknown image format 'qcow3'; use raw or qcow2/,
    ],
    [["create", "-f", "raw", "/tmp/x.img", "12x"], 2, /cannot read size '12x'/],
    [["create", "-o", "cluster_size", "/tmp/x.img", "1M"], 2, /needs a value/],
    [["create", "-f", "qcow2", "-o", "refcount_bits=1", "/tmp/x.img", "1M"], 2, /not supported/],
    [["convert", "only-one-file"], 2, /missing OUTPUT/],
    [["frobnicate"], 2, /unknown subcommand 'frobnicate'/],
    [["convert", "-t", "bogus", "a", "b"], 2, /unknown cache mode 'bogus'/],
    [["info", "--bogus", "x"], 2, /bogus/],
    [["compare", "-f", "vmdk", "a", "b"], 2, /unknown image format 'vmdk'/],
  ];
  for (const [args, code, message] of cases) {
    const r = await denovisor(["img", ...args]);
    assert.equal(r.code, code, `img ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
