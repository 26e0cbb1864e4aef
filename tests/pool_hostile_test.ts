/**
 * Pools under faults and hostile input (issue 17): a snapshot or a full clone killed in
 * its dangerous window (DENOVISOR_FAULT, storage/pool/fault.ts) is completed or undone at
 * the next start; temporaries of interrupted operations are removed; every mutating
 * volume operation honours the image lock, whatever path the other user took; listings
 * skip what is not a volume; imports refuse what is not an image and backing files
 * outside the pool; files and directories are private whatever the umask.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type PoolError, PoolManager } from "../storage/pool/mod.ts";
import { createImage, openImage } from "../storage/image.ts";
import {
  hasPattern,
  judgeImage,
  rejectsWithPoolError,
  withTempDir,
  writePattern,
} from "./pool_support.ts";

const MiB = 1024 * 1024;
const POOL_MOD = new URL("../storage/pool/mod.ts", import.meta.url).href;

function manager(dir: string, options: { allowedBackingDirectories?: string[] } = {}) {
  return new PoolManager({ stateDir: `${dir}/state`, ...options });
}

function dirPool(dir: string): PoolManager {
  const pools = manager(dir);
  pools.define({ name: "default", type: "dir", path: `${dir}/images` });
  pools.build("default");
  pools.start("default");
  return pools;
}

/** Runs a pool operation in a child process that SIGKILLs itself at fault point `fault`. */
async function killedAt(dir: string, fault: string, operation: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { PoolManager } from "${POOL_MOD}";
       const pools = new PoolManager({ stateDir: ${JSON.stringify(`${dir}/state`)} });
       await ${operation};
       console.log("finished");`,
    ],
    env: { DENOVISOR_FAULT: fault },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    out.signal,
    "SIGKILL",
    `the fault point was not reached: ${new TextDecoder().decode(out.stderr)}`,
  );
}

Deno.test("a snapshot killed between its rename and the overlay's placement is completed at the next start, and no rename replaces a file", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const volume = await pools.createVolume("default", { name: "disk", size: "4M", format: "raw" });
    writePattern(volume.path, 0, MiB, 0x61);
    await killedAt(
      dir,
      "snapshot-after-rename",
      `pools.volumeAction("default", "disk", "snapshot", { target: "s1" })`,
    );
    // The crash left the volume's name empty: it is not listed.
    assert.deepEqual(pools.listVolumes("default").map((v) => v.name), []);
    const next = manager(dir);
    const log = next.startAutostart();
    assert.equal(log.length, 1, log.join("\n"));
    assert.match(
      log[0],
      /pool 'default': volume 'disk': snapshot 's1' completed after an interruption/,
    );
    const info = next.volumeInfo("default", "disk");
    assert.deepEqual(info.snapshots, ["s1"]);
    assert.equal(info.format, "qcow2");
    assert.equal(info.backingChain.length, 1);
    judgeImage(info.path);
    assert.ok(hasPattern(info.path, 0, MiB, 0x61), "the data is still there through the overlay");
    assert.equal(Deno.statSync(info.backingChain[0]).mode! & 0o777, 0o400);

    // An orphaned file where a snapshot would go is never overwritten.
    const orphan = `${dir}/images/.snapshots/disk/s2`;
    Deno.writeTextFileSync(orphan, "precious");
    await rejectsWithPoolError(
      () => next.volumeAction("default", "disk", "snapshot", { target: "s2" }),
      "conflict",
      /exists but is no snapshot/,
    );
    assert.equal(Deno.readTextFileSync(orphan), "precious");
    assert.deepEqual(next.volumeInfo("default", "disk").snapshots, ["s1"]);
  });
});

Deno.test("a full clone killed before its rename leaves no volume, and the next start removes its temporary", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const volume = await pools.createVolume("default", { name: "src", size: "4M", format: "raw" });
    writePattern(volume.path, 0, MiB, 0x62);
    await killedAt(
      dir,
      "clone-before-rename",
      `pools.volumeAction("default", "src", "clone", { target: "copy", mode: "full" })`,
    );
    assert.deepEqual(pools.listVolumes("default").map((v) => v.name), ["src"]);
    assert.ok(
      Deno.statSync(`${dir}/images/.copy.create`).isFile,
      "the copy was under its temporary name",
    );
    // Temporaries of the image tools: a dead process's are removed, a live one's kept.
    Deno.writeTextFileSync(`${dir}/images/.x.qcow2.convert-to-999999999-abc`, "");
    Deno.writeTextFileSync(`${dir}/images/.y.qcow2.convert-to-${Deno.pid}-abc`, "");
    const next = manager(dir);
    next.startAutostart();
    const left = [...Deno.readDirSync(`${dir}/images`)].map((e) => e.name).sort();
    assert.deepEqual(left, [`.y.qcow2.convert-to-${Deno.pid}-abc`, "src"]);
    const copy = await next.volumeAction("default", "src", "clone", { target: "copy" });
    assert.ok(hasPattern(copy.path, 0, MiB, 0x62));
  });
});

Deno.test("every mutating volume operation is refused while another user holds the image, even through a hardlink", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const volume = await pools.createVolume("default", {
      name: "disk",
      size: "4M",
      format: "qcow2",
    });
    await pools.volumeAction("default", "disk", "snapshot", { target: "s0" });
    // A "VM" uses the volume through a hardlink elsewhere: no path the pool knows.
    Deno.mkdirSync(`${dir}/elsewhere`);
    Deno.linkSync(volume.path, `${dir}/elsewhere/vm-disk.qcow2`);
    const vm = openImage(`${dir}/elsewhere/vm-disk.qcow2`);
    try {
      const actions: [string, Record<string, unknown>][] = [
        ["wipe", {}],
        ["snapshot", { target: "s1" }],
        ["rollback", { snapshot: "s0" }],
        ["resize", { size: "8M" }],
        ["commit", {}],
      ];
      for (const [action, body] of actions) {
        await assert.rejects(
          () => pools.volumeAction("default", "disk", action, body),
          (error: unknown) => {
            assert.ok(error instanceof Error, String(error));
            assert.equal((error as PoolError).code, "busy", `${action}: ${error.message}`);
            assert.match(error.message, /in use by another process/, action);
            return true;
          },
        );
      }
      await rejectsWithPoolError(
        () => pools.deleteVolume("default", "disk"),
        "busy",
        /in use by another process/,
      );
      assert.deepEqual(pools.volumeInfo("default", "disk").snapshots, ["s0"]);
      assert.ok(Deno.statSync(volume.path).isFile);
    } finally {
      vm.close();
    }
    await pools.volumeAction("default", "disk", "wipe", {});
    await pools.deleteVolume("default", "disk");
    // convert (a volume without snapshots) reads under the lock: a writer keeps it out.
    const plain = await pools.createVolume("default", { name: "plain", size: "1M", format: "raw" });
    const writer = openImage(plain.path, { format: "raw" });
    try {
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "plain", "convert", { format: "qcow2" }),
        "busy",
        /in use by another process/,
      );
    } finally {
      writer.close();
    }
    await pools.volumeAction("default", "plain", "convert", { format: "qcow2" });
  });
});

Deno.test("a listing skips and reports entries that are not volumes; delete works on a pool started without build", async () => {
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/images`);
    const pools = manager(dir);
    pools.define({ name: "default", type: "dir", path: `${dir}/images` });
    pools.start("default"); // no build: the volumes' state directory does not exist
    Deno.writeFileSync(`${dir}/images/ubuntu 22.04.iso`, new Uint8Array(512));
    Deno.writeFileSync(`${dir}/images/good.raw`, new Uint8Array(512));
    new Deno.Command("mkfifo", { args: [`${dir}/images/pipe`] }).outputSync();
    Deno.mkdirSync(`${dir}/images/folder`);
    assert.deepEqual(pools.listVolumes("default").map((v) => v.name), ["good.raw"]);
    assert.deepEqual(pools.info("default").skipped, ["folder", "pipe", "ubuntu 22.04.iso"]);
    await pools.deleteVolume("default", "good.raw");
    assert.deepEqual(pools.listVolumes("default"), []);
  });
});

Deno.test("imports refuse what is not an image and backing files outside the pool or the allowed directories", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).outputSync();
    for (const source of [`${dir}/fifo`, "/dev/zero", "/proc/self/environ"]) {
      await assert.rejects(
        () => pools.createVolume("default", { name: "x", import: source }),
        /Cannot open image .*: it is (a FIFO|a character device|a proc kernel file)/,
        source,
      );
    }
    Deno.mkdirSync(`${dir}/host`);
    Deno.writeFileSync(`${dir}/host/secret`, new TextEncoder().encode("root:secret\n"));
    const crafted = `${dir}/host/crafted.qcow2`;
    new Deno.Command("qemu-img", {
      args: ["create", "-f", "qcow2", "-F", "raw", "-b", `${dir}/host/secret`, crafted, "1M"],
      stdout: "null",
    }).outputSync();
    await rejectsWithPoolError(
      () => pools.createVolume("default", { name: "stolen", import: crafted }),
      "forbidden",
      /outside the allowed directories/,
    );
    assert.deepEqual(pools.listVolumes("default"), []);
    const allowing = manager(dir, { allowedBackingDirectories: [`${dir}/host`] });
    const imported = await allowing.createVolume("default", { name: "flat", import: crafted });
    assert.deepEqual(imported.backingChain, []);
  });
});

Deno.test("volumes, clones, converted images and pool directories are private whatever the umask", async () => {
  await withTempDir(async (dir) => {
    const previous = Deno.umask(0o022);
    try {
      const pools = dirPool(dir);
      assert.equal(Deno.statSync(`${dir}/images`).mode! & 0o777, 0o700);
      for (const format of ["raw", "qcow2"]) {
        const v = await pools.createVolume("default", { name: format, size: "1M", format });
        assert.equal(Deno.statSync(v.path).mode! & 0o777, 0o600, format);
      }
      const linked = await pools.volumeAction("default", "raw", "clone", {
        target: "l",
        mode: "linked",
      });
      assert.equal(Deno.statSync(linked.path).mode! & 0o777, 0o600);
      const full = await pools.volumeAction("default", "qcow2", "clone", {
        target: "f",
        format: "raw",
      });
      assert.equal(Deno.statSync(full.path).mode! & 0o777, 0o600);
      const converted = await pools.volumeAction("default", "f", "convert", { format: "qcow2" });
      assert.equal(Deno.statSync(converted.path).mode! & 0o777, 0o600);
      await pools.volumeAction("default", "qcow2", "snapshot", { target: "s" });
      assert.equal(Deno.statSync(`${dir}/images/.snapshots`).mode! & 0o777, 0o700);
      assert.equal(Deno.statSync(`${dir}/images/.snapshots/qcow2`).mode! & 0o777, 0o700);
    } finally {
      Deno.umask(previous);
    }
  });
});

Deno.test("a volume is the base of a clone that names it through a symlink", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const base = await pools.createVolume("default", { name: "base", size: "1M", format: "raw" });
    Deno.symlinkSync(base.path, `${dir}/alias.raw`);
    createImage(`${dir}/images/clone`, {
      format: "qcow2",
      backingFile: `${dir}/alias.raw`,
      backingFormat: "raw",
    });
    await rejectsWithPoolError(
      () => pools.deleteVolume("default", "base"),
      "conflict",
      /base of 'clone'/,
    );
  });
});

Deno.test("a snapshot deletion killed after its copy is finished at the next start, with every later state intact", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const volume = await pools.createVolume("default", { name: "disk", size: "4M", format: "raw" });
    writePattern(volume.path, 0, MiB, 0x41);
    await pools.volumeAction("default", "disk", "snapshot", { target: "s1" }); // raw: flattened
    writePattern(volume.path, MiB, MiB, 0x42);
    await pools.volumeAction("default", "disk", "snapshot", { target: "s2" });
    writePattern(volume.path, 2 * MiB, MiB, 0x43);
    for (const snapshot of ["s1", "s2"]) { // s1: the flatten path; s2: the commit path
      await killedAt(
        dir,
        "delete-snapshot-after-copy",
        `pools.volumeAction("default", "disk", "delete-snapshot", { snapshot: "${snapshot}" })`,
      );
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "disk", "snapshot", { target: "s9" }),
        "conflict",
        /unfinished delete-snapshot/,
      );
      const next = manager(dir);
      next.startAutostart();
      assert.match(
        next.recovered.join("\n"),
        new RegExp(`'${snapshot}' deleted after an interruption`),
      );
      const info = next.volumeInfo("default", "disk");
      assert.ok(!info.snapshots.includes(snapshot), info.snapshots.join());
      judgeImage(info.path);
      assert.ok(hasPattern(info.path, 0, MiB, 0x41), `${snapshot}: first state`);
      assert.ok(hasPattern(info.path, MiB, MiB, 0x42), `${snapshot}: second state`);
      assert.ok(hasPattern(info.path, 2 * MiB, MiB, 0x43), `${snapshot}: the volume's own writes`);
    }
    assert.deepEqual(manager(dir).volumeInfo("default", "disk").snapshots, []);
  });
});

Deno.test("a rollback killed after its rename drops the newer snapshots at the next start", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    const volume = await pools.createVolume("default", {
      name: "disk",
      size: "4M",
      format: "qcow2",
    });
    writePattern(volume.path, 0, MiB, 0x51);
    await pools.volumeAction("default", "disk", "snapshot", { target: "s1" });
    writePattern(volume.path, 0, MiB, 0x52);
    await pools.volumeAction("default", "disk", "snapshot", { target: "s2" });
    writePattern(volume.path, 0, MiB, 0x53);
    await killedAt(
      dir,
      "rollback-after-rename",
      `pools.volumeAction("default", "disk", "rollback", { snapshot: "s1", dropNewer: true })`,
    );
    await rejectsWithPoolError(
      () => pools.volumeAction("default", "disk", "rollback", { snapshot: "s2" }),
      "conflict",
      /unfinished rollback/,
    );
    const next = manager(dir);
    next.startAutostart();
    assert.match(next.recovered.join("\n"), /rollback to 's1' completed after an interruption/);
    const info = next.volumeInfo("default", "disk");
    assert.deepEqual(info.snapshots, ["s1"]);
    assert.ok(hasPattern(info.path, 0, MiB, 0x51), "the volume reads as s1");
    assert.deepEqual([...Deno.readDirSync(`${dir}/images/.snapshots/disk`)].map((e) => e.name), [
      "s1",
    ]);
    judgeImage(info.path);
  });
});

Deno.test("an export into a missing directory is invalid, and a finished export leaves no temporary", async () => {
  await withTempDir(async (dir) => {
    const pools = dirPool(dir);
    await pools.createVolume("default", { name: "disk", size: "1M", format: "qcow2" });
    await rejectsWithPoolError(
      () => pools.volumeAction("default", "disk", "export", { target: `${dir}/nope/out.raw` }),
      "invalid",
      /is not a directory; create it first/,
    );
    Deno.mkdirSync(`${dir}/out`);
    await pools.volumeAction("default", "disk", "export", {
      target: `${dir}/out/disk.raw`,
      format: "raw",
    });
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name), ["disk.raw"]);
    assert.equal(Deno.statSync(`${dir}/out/disk.raw`).mode! & 0o777, 0o600);
  });
});
