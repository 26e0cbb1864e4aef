/**
 * Storage under hostile input (issue 17): files that are not images (a FIFO, /dev/zero,
 * /proc/self/environ) at the top or anywhere in a backing chain are refused without
 * blocking; backing files outside the allowed directories are refused under a policy; a
 * compressed cluster that inflates to far more than a cluster is corrupt and costs no
 * memory; `check` reports an L1 entry with COPIED set and no table. Every image here is
 * crafted by the test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { constants, deflateRawSync } from "node:zlib";
import {
  BackingRefused,
  checkImage,
  createImage,
  ImageError,
  imageInfo,
  openImage,
  probeFormat,
} from "../storage/image.ts";
import { qemuImg } from "../storage/qcow2/testing/qemu_tools.ts";
import { denovisor } from "./cli_support.ts";

const MIB = 1024 * 1024;

function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix: "hostile-" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

function mkfifo(path: string): void {
  const r = new Deno.Command("mkfifo", { args: [path] }).outputSync();
  assert.ok(r.success, "mkfifo");
}

/** Runs `fn` with a watchdog: a blocking open would hang the thread, so the test fails by
 *  timing out the subprocess instead (the opens are tried in a child process). */
async function inChild(code: string): Promise<{ code: number; stderr: string; stdout: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const IMAGE = new URL("../storage/image.ts", import.meta.url).href;

Deno.test("a FIFO, /dev/zero and /proc/self/environ are refused as images, at the top and as backing files, without blocking", async () => {
  using dir = tempDir();
  const fifo = `${dir.path}/fifo`;
  mkfifo(fifo);
  createImage(`${dir.path}/over-fifo.qcow2`, {
    format: "qcow2",
    size: MIB,
    backingFile: fifo,
    backingFormat: "raw",
  });
  createImage(`${dir.path}/mid.qcow2`, { format: "qcow2", size: MIB });
  createImage(`${dir.path}/top.qcow2`, { format: "qcow2", backingFile: "mid.qcow2" });
  // The middle image's backing file becomes the FIFO: depth 2 of the chain.
  qemuImg("rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", fifo, `${dir.path}/mid.qcow2`);
  const paths = [fifo, "/dev/zero", "/proc/self/environ"];
  const chains = [`${dir.path}/over-fifo.qcow2`, `${dir.path}/top.qcow2`];
  const result = await inChild(`
    import { imageInfo, openImage, probeFormat } from "${IMAGE}";
    const outcomes = [];
    const attempt = (what, fn) => {
      try { fn(); outcomes.push(what + ": accepted"); }
      catch (error) { outcomes.push(what + ": " + error.name + ": " + error.message); }
    };
    for (const path of ${JSON.stringify(paths)}) {
      attempt("probe " + path, () => probeFormat(path));
      attempt("open " + path, () => openImage(path, { readOnly: true }).close());
      attempt("info " + path, () => imageInfo(path));
    }
    for (const path of ${JSON.stringify(chains)}) {
      attempt("open " + path, () => openImage(path, { readOnly: true }).close());
      attempt("info " + path, () => imageInfo(path));
    }
    console.log(JSON.stringify(outcomes));
  `);
  assert.equal(result.code, 0, `the child blocked or failed: ${result.stderr}`);
  const outcomes: string[] = JSON.parse(result.stdout);
  assert.equal(outcomes.length, paths.length * 3 + chains.length * 2);
  for (const outcome of outcomes) {
    assert.match(
      outcome,
      /ImageError: Cannot open image .*: it is (a FIFO|a character device|a proc kernel file)/,
      outcome,
    );
  }
});

Deno.test("under a backing policy, backing files outside the allowed directories and block devices are refused; without one they open", () => {
  using dir = tempDir();
  using outside = tempDir();
  Deno.mkdirSync(`${dir.path}/pool`);
  createImage(`${outside.path}/secret.raw`, { format: "raw", size: MIB });
  createImage(`${dir.path}/pool/base.raw`, { format: "raw", size: MIB });
  createImage(`${dir.path}/pool/inside.qcow2`, { format: "qcow2", backingFile: "base.raw" });
  createImage(`${dir.path}/pool/escape.qcow2`, {
    format: "qcow2",
    backingFile: `${outside.path}/secret.raw`,
  });
  // Depth 2: a chain that starts inside and escapes one level down.
  createImage(`${dir.path}/pool/deep.qcow2`, { format: "qcow2", backingFile: "escape.qcow2" });
  // A symlink inside the pool to a file outside it escapes too.
  Deno.symlinkSync(`${outside.path}/secret.raw`, `${dir.path}/pool/link.raw`);
  createImage(`${dir.path}/pool/via-link.qcow2`, { format: "qcow2", backingFile: "link.raw" });
  const policy = { allowedDirectories: [`${dir.path}/pool`] };
  openImage(`${dir.path}/pool/inside.qcow2`, { backingPolicy: policy }).close();
  imageInfo(`${dir.path}/pool/inside.qcow2`, { backingPolicy: policy });
  for (const name of ["escape.qcow2", "deep.qcow2", "via-link.qcow2"]) {
    const path = `${dir.path}/pool/${name}`;
    assert.throws(() => openImage(path, { backingPolicy: policy }), BackingRefused, name);
    assert.throws(
      () => imageInfo(path, { backingPolicy: policy }),
      /outside the allowed directories/,
    );
    openImage(path, { readOnly: true }).close(); // img keeps qemu-img's semantics
  }
  assert.throws(
    () => openImage(`${dir.path}/pool/escape.qcow2`, { backingPolicy: policy }),
    (refused: unknown) => refused instanceof BackingRefused && refused.code === "forbidden",
  );
});

Deno.test("under a backing policy a block device is refused as a backing file", {
  ignore: Deno.uid() !== 0, // a loop device needs root
}, () => {
  using dir = tempDir();
  const backingFile = `${dir.path}/disk.raw`;
  createImage(backingFile, { format: "raw", size: MIB });
  const loop = new TextDecoder().decode(
    new Deno.Command("losetup", { args: ["-f", "--show", backingFile] }).outputSync().stdout,
  ).trim();
  assert.match(loop, /^\/dev\/loop\d+$/);
  try {
    createImage(`${dir.path}/over.qcow2`, {
      format: "qcow2",
      size: MIB,
      backingFile: loop,
      backingFormat: "raw",
    });
    const policy = { allowedDirectories: ["/dev", dir.path] };
    assert.throws(
      () => openImage(`${dir.path}/over.qcow2`, { backingPolicy: policy }),
      /not a regular file/,
    );
  } finally {
    new Deno.Command("losetup", { args: ["-d", loop] }).outputSync();
  }
});

/** VmHWM of this process in bytes: the peak resident set. */
function peakRss(): number {
  const line = Deno.readTextFileSync("/proc/self/status").split("\n")
    .find((l) => l.startsWith("VmHWM:"))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

Deno.test("a compressed cluster that inflates to far more than a cluster is corrupt and is never inflated whole", () => {
  using dir = tempDir();
  const path = `${dir.path}/bomb.qcow2`;
  const clusterBits = 21;
  const cluster = 1 << clusterBits;
  // A real compressed image to start from: one cluster of data, compressed.
  const raw = `${dir.path}/data.raw`;
  const data = new Uint8Array(cluster).fill(0x5a);
  Deno.writeFileSync(raw, data);
  qemuImg("convert", "-c", "-O", "qcow2", "-o", `cluster_size=${cluster}`, raw, path);
  assert.equal(probeFormat(path), "qcow2");
  // The bomb: 16 copies of 64 MiB of zeroes deflated and sync-flushed (no final block),
  // one valid stream inflating to 1 GiB from about 1 MiB.
  const chunk = deflateRawSync(new Uint8Array(64 * MIB), { finishFlush: constants.Z_SYNC_FLUSH });
  const copies = 16;
  const bomb = new Uint8Array(chunk.length * copies);
  for (let i = 0; i < copies; i++) bomb.set(chunk, i * chunk.length);
  assert.ok(bomb.length < 2 * cluster, `${bomb.length} bytes fit the stored-length limit`);
  const file = Deno.openSync(path, { read: true, write: true });
  const header = new Uint8Array(48);
  file.seekSync(0, Deno.SeekMode.Start);
  file.readSync(header);
  const l1Offset = Number(new DataView(header.buffer).getBigUint64(40));
  const l1 = new Uint8Array(8);
  file.seekSync(l1Offset, Deno.SeekMode.Start);
  file.readSync(l1);
  const l2Offset = Number(new DataView(l1.buffer).getBigUint64(0) & 0x00ff_ffff_ffff_fe00n);
  const at = Math.ceil(Deno.statSync(path).size / 512) * 512;
  file.seekSync(at, Deno.SeekMode.Start);
  file.writeSync(bomb);
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const sectors = BigInt(Math.ceil(bomb.length / 512));
  const entry = (1n << 62n) | ((sectors - 1n) << offsetBits) | BigInt(at);
  const entryBytes = new Uint8Array(8);
  new DataView(entryBytes.buffer).setBigUint64(0, entry);
  file.seekSync(l2Offset, Deno.SeekMode.Start);
  file.writeSync(entryBytes);
  file.close();

  const image = openImage(path, { readOnly: true });
  try {
    const before = peakRss();
    assert.throws(
      () => image.read(0, [new Uint8Array(4096)]),
      (error: unknown) =>
        error instanceof ImageError && /inflates to more than 2097152 bytes/.test(error.message),
    );
    const grown = peakRss() - before;
    assert.ok(grown < 64 * MIB, `reading the bomb raised the peak RSS by ${grown} bytes`);
  } finally {
    image.close();
  }
});

Deno.test("check reports an L1 entry with COPIED set and offset 0 as corruption, as qemu-img check does", () => {
  using dir = tempDir();
  const path = `${dir.path}/copied.qcow2`;
  createImage(path, { format: "qcow2", size: MIB });
  assert.deepEqual(checkImage(path).errors, []);
  const file = Deno.openSync(path, { read: true, write: true });
  const header = new Uint8Array(48);
  file.readSync(header);
  const l1Offset = Number(new DataView(header.buffer).getBigUint64(40));
  const entry = new Uint8Array(8);
  new DataView(entry.buffer).setBigUint64(0, 1n << 63n);
  file.seekSync(l1Offset, Deno.SeekMode.Start);
  file.writeSync(entry);
  file.close();
  const errors = checkImage(path).errors;
  assert.equal(errors.length, 1, errors.join("; "));
  assert.match(errors[0], /L1 entry 0 has the COPIED flag set but no L2 table/);
  assert.notEqual(new Deno.Command("qemu-img", { args: ["check", path] }).outputSync().code, 0);
});

Deno.test("denovisor img refuses a FIFO, /dev/zero and /proc/self/environ with a clear error instead of hanging", async () => {
  using dir = tempDir();
  const fifo = `${dir.path}/fifo`;
  mkfifo(fifo);
  for (const source of [fifo, "/dev/zero", "/proc/self/environ"]) {
    for (
      const args of [["info", source], ["convert", "-O", "raw", source, `${dir.path}/out.raw`]]
    ) {
      const r = await denovisor(["img", ...args], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0, `${args.join(" ")}: ${r.stdout}`);
      assert.match(
        r.stderr,
        /it is (a FIFO|a character device|a proc kernel file); an image is a regular file or a block device|it is a proc kernel file, not a disk image/,
        args.join(" "),
      );
    }
  }
});
