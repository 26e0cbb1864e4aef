import assert from "node:assert/strict";
import { PoolManager } from "./mod.ts";
import {
  hasPattern,
  judgeImage,
  poolTest,
  rejectsWithPoolError,
  sh,
  withTempDir,
  writePattern,
} from "../../tests/pool_support.ts";

const QEMU = ["qemu-img", "qemu-io"];
const MiB = 1024 * 1024;

async function dirPool(dir: string, users: Record<string, string> = {}) {
  const pools = new PoolManager({ stateDir: `${dir}/state`, volumeUser: (path) => users[path] });
  pools.define({ name: "default", type: "dir", path: `${dir}/images` });
  pools.build("default");
  pools.start("default");
  return await Promise.resolve(pools);
}

Deno.test("define() validates the definition and persists it for the next PoolManager", async () => {
  await withTempDir(async (dir) => {
    const pools = new PoolManager({ stateDir: `${dir}/state` });
    await rejectsWithPoolError(
      () => pools.define({ name: "a", type: "nfs", path: "/x" }),
      "invalid",
      /type/,
    );
    await rejectsWithPoolError(
      () => pools.define({ name: "a", type: "dir", path: "rel" }),
      "invalid",
      /absolute/,
    );
    await rejectsWithPoolError(
      () => pools.define({ name: "../a", type: "dir", path: "/x" }),
      "invalid",
      /name/,
    );
    await rejectsWithPoolError(
      () => pools.define({ name: "a", type: "dir", path: "/x", color: 1 }),
      "invalid",
      /^color: unknown field; the known fields here are name, type, path, autostart$/,
    );
    // Every structural mistake at once, each with its field (pool_schema.ts).
    await rejectsWithPoolError(
      () => pools.define({ type: "zfs", path: 5 }),
      "invalid",
      /^name: missing; every pool needs a name\ntype: "zfs" is not a pool type; use dir, btrfs, block, shared\npath: expected a string, got 5$/,
    );
    await rejectsWithPoolError(
      () => pools.volumeAction("a", "v", "resize", { size: true, sise: 1 }),
      "invalid",
      /^sise: unknown field; .*\nsize: expected a number of bytes or a size such as "10G", got true$/,
    );
    const info = pools.define({ name: "a", type: "dir", path: `${dir}/a`, autostart: true });
    assert.equal(info.state, "inactive");
    await rejectsWithPoolError(
      () => pools.define({ name: "a", type: "dir", path: "/y" }),
      "conflict",
      /already/,
    );
    await rejectsWithPoolError(
      () => pools.define({ name: "b", type: "dir", path: `${dir}/a/` }),
      "conflict",
      /uses/,
    );
    await rejectsWithPoolError(() => pools.start("a"), "conflict", /build the pool/);
    pools.build("a");
    pools.start("a");
    const again = new PoolManager({ stateDir: `${dir}/state` });
    assert.deepEqual(again.list().map((p) => [p.name, p.state, p.autostart]), [[
      "a",
      "active",
      true,
    ]]);
    await rejectsWithPoolError(() => again.undefine("a"), "conflict", /stop it first/);
    again.stop("a");
    again.undefine("a", { delete: true });
    assert.deepEqual(again.list(), []);
    assert.throws(() => Deno.statSync(`${dir}/a`), Deno.errors.NotFound);
    await rejectsWithPoolError(() => again.info("a"), "not_found", /No pool 'a'/);
  });
});

poolTest(
  "dir pool: raw and qcow2 volumes with preallocation, judged by qemu-img",
  QEMU,
  async () => {
    await withTempDir(async (dir) => {
      const pools = await dirPool(dir);
      const raw = await pools.createVolume("default", { name: "a.raw", size: "16M" });
      assert.equal(raw.format, "raw");
      assert.equal(raw.virtualSize, 16 * MiB);
      assert.ok(raw.allocatedSize < MiB, "a raw volume starts sparse");
      const full = await pools.createVolume("default", {
        name: "b.raw",
        size: "8M",
        preallocation: "full",
      });
      assert.ok(full.allocatedSize >= 8 * MiB, "preallocation=full allocates every byte");
      const qcow = await pools.createVolume("default", {
        name: "c.qcow2",
        size: "1G",
        format: "qcow2",
      });
      assert.equal(judgeImage(qcow.path)["virtual-size"], 1024 * MiB);
      const meta = await pools.createVolume("default", {
        name: "d",
        size: 64 * MiB,
        format: "qcow2",
        preallocation: "metadata",
      });
      assert.equal(judgeImage(meta.path).format, "qcow2");
      await rejectsWithPoolError(
        () => pools.createVolume("default", { name: "a.raw", size: "1M" }),
        "conflict",
        /already exists/,
      );
      await rejectsWithPoolError(
        () => pools.createVolume("default", { name: "e", size: "lots" }),
        "invalid",
        /size/,
      );
      await rejectsWithPoolError(
        () => pools.createVolume("default", { name: "e", size: "9P" }),
        "invalid",
        /size/,
      );
      await rejectsWithPoolError(
        () => pools.createVolume("default", { name: "e" }),
        "invalid",
        /needs a size/,
      );
      assert.deepEqual(pools.listVolumes("default").map((v) => v.name), [
        "a.raw",
        "b.raw",
        "c.qcow2",
        "d",
      ]);
      assert.equal(pools.info("default").volumes, 4);
    });
  },
);

poolTest(
  "external snapshots: rollback restores, delete-snapshot and commit keep the data",
  QEMU,
  async () => {
    await withTempDir(async (dir) => {
      const pools = await dirPool(dir);
      const vol = await pools.createVolume("default", { name: "web", size: "4M" });
      writePattern(vol.path, 0, 65536, 0x11);
      let info = await pools.volumeAction("default", "web", "snapshot", { target: "s1" });
      assert.equal(info.format, "qcow2");
      assert.equal(info.path, vol.path, "the volume keeps its path");
      assert.deepEqual(info.snapshots, ["s1"]);
      writePattern(vol.path, 0, 65536, 0x22);
      info = await pools.volumeAction("default", "web", "snapshot", { target: "s2" });
      assert.equal(info.backingChain.length, 2);
      writePattern(vol.path, 0, 65536, 0x33);
      for (const path of [info.path, ...info.backingChain]) judgeImage(path);

      info = await pools.volumeAction("default", "web", "rollback", { snapshot: "s2" });
      assert.ok(hasPattern(vol.path, 0, 65536, 0x22), "rollback to s2 restores s2's data");
      writePattern(vol.path, 4096, 4096, 0x44);
      info = await pools.volumeAction("default", "web", "delete-snapshot", { snapshot: "s1" });
      assert.deepEqual(info.snapshots, ["s2"]);
      assert.ok(hasPattern(vol.path, 0, 4096, 0x22) && hasPattern(vol.path, 4096, 4096, 0x44));
      info = await pools.volumeAction("default", "web", "rollback", { snapshot: "s2" });
      assert.ok(hasPattern(vol.path, 4096, 4096, 0x22), "s2 survived the deletion of s1");
      writePattern(vol.path, 8192, 4096, 0x55);
      info = await pools.volumeAction("default", "web", "commit", {});
      assert.deepEqual(info.snapshots, []);
      assert.deepEqual(info.backingChain, []);
      assert.ok(hasPattern(vol.path, 0, 8192, 0x22) && hasPattern(vol.path, 8192, 4096, 0x55));
      judgeImage(vol.path);
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "web", "rollback", { snapshot: "s9" }),
        "not_found",
        /no snapshot "s9"/,
      );
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "web", "commit", {}),
        "conflict",
        /no snapshot/,
      );
    });
  },
);

poolTest(
  "a volume in use or under a linked clone is refused, naming the domain or clone",
  QEMU,
  async () => {
    await withTempDir(async (dir) => {
      const users: Record<string, string> = {};
      const pools = await dirPool(dir, users);
      const base = await pools.createVolume("default", { name: "base", size: "8M" });
      users[base.path] = "web1";
      for (
        const [action, body] of [["wipe", {}], ["resize", { size: "16M" }], ["snapshot", {
          target: "s",
        }]]
      ) {
        await rejectsWithPoolError(
          () => pools.volumeAction("default", "base", action as string, body),
          "busy",
          /Volume 'base' is in use by domain 'web1'; shut it down first/,
        );
      }
      await rejectsWithPoolError(
        () => pools.deleteVolume("default", "base"),
        "busy",
        /in use by domain 'web1'/,
      );
      assert.equal(pools.volumeInfo("default", "base").usedBy, "web1");
      await rejectsWithPoolError(() => pools.stop("default"), "busy", /web1/);
      delete users[base.path];

      const clone = await pools.volumeAction("default", "base", "clone", {
        target: "c1",
        mode: "linked",
      });
      assert.equal(clone.format, "qcow2");
      assert.deepEqual(clone.backingChain, [base.path]);
      judgeImage(clone.path);
      await rejectsWithPoolError(
        () => pools.deleteVolume("default", "base"),
        "conflict",
        /base of 'c1'/,
      );
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "base", "wipe", {}),
        "conflict",
        /base of 'c1'/,
      );
      const flat = await pools.volumeAction("default", "c1", "convert", { format: "raw" });
      assert.equal(flat.format, "raw");
      assert.deepEqual(flat.backingChain, []);
      await pools.deleteVolume("default", "base");
      await rejectsWithPoolError(
        () => pools.volumeInfo("default", "base"),
        "not_found",
        /No volume 'base'/,
      );
    });
  },
);

poolTest(
  "rollback past later snapshots is refused with their names unless dropNewer",
  QEMU,
  async () => {
    await withTempDir(async (dir) => {
      const pools = await dirPool(dir);
      const vol = await pools.createVolume("default", { name: "web", size: "4M" });
      const other = await pools.createVolume("default", { name: "db", size: "4M" });
      writePattern(vol.path, 0, 65536, 0x11);
      await pools.snapshotPool("default", { target: "s1" });
      writePattern(vol.path, 0, 65536, 0x22);
      await pools.snapshotPool("default", { target: "s2" });
      await pools.volumeAction("default", "web", "snapshot", { target: "s3" });
      await rejectsWithPoolError(
        () => pools.volumeAction("default", "web", "rollback", { snapshot: "s1" }),
        "conflict",
        /^Rolling volume 'web' back to 's1' deletes its later snapshots 's2', 's3'; add --drop-newer/,
      );
      // The pool's rollback checks every volume first: none is rolled back.
      await rejectsWithPoolError(
        () => pools.rollbackPool("default", { snapshot: "s1" }),
        "conflict",
        /volume 'db' back to 's1' deletes its later snapshot 's2';|volume 'web' back to 's1'/,
      );
      assert.deepEqual(pools.volumeInfo("default", "web").snapshots, ["s1", "s2", "s3"]);
      assert.deepEqual(pools.volumeInfo("default", "db").snapshots, ["s1", "s2"]);
      assert.ok(hasPattern(vol.path, 0, 65536, 0x22), "nothing was rolled back");
      // Back to the newest snapshot drops nothing: no flag needed.
      await pools.volumeAction("default", "web", "rollback", { snapshot: "s3" });
      const info = await pools.volumeAction("default", "web", "rollback", {
        snapshot: "s1",
        dropNewer: true,
      });
      assert.deepEqual(info.snapshots, ["s1"]);
      assert.ok(hasPattern(vol.path, 0, 65536, 0x11), "rolled back to s1");
      await pools.rollbackPool("default", { snapshot: "s1", dropNewer: true });
      assert.deepEqual(pools.volumeInfo("default", "db").snapshots, ["s1"]);
      judgeImage(other.path);
    });
  },
);

poolTest("resize grows a volume; shrinking needs force", QEMU, async () => {
  await withTempDir(async (dir) => {
    const pools = await dirPool(dir);
    await pools.createVolume("default", { name: "r", size: "8M" });
    await pools.createVolume("default", { name: "q", size: "8M", format: "qcow2" });
    for (const name of ["r", "q"]) {
      const grown = await pools.volumeAction("default", name, "resize", { size: "32M" });
      assert.equal(grown.virtualSize, 32 * MiB);
      await rejectsWithPoolError(
        () => pools.volumeAction("default", name, "resize", { size: "4M" }),
        "conflict",
        /Shrinking volume/,
      );
      if (name === "q") {
        // The qcow2 layer only grows images; the refusal says how to shrink instead.
        await rejectsWithPoolError(
          () => pools.volumeAction("default", name, "resize", { size: "4M", force: true }),
          "invalid",
          /convert the volume to raw/,
        );
        continue;
      }
      const shrunk = await pools.volumeAction("default", name, "resize", {
        size: "4M",
        force: true,
      });
      assert.equal(judgeImage(shrunk.path)["virtual-size"], 4 * MiB);
    }
  });
});

poolTest("clone, import, export and convert keep the content; wipe zeroes it", QEMU, async () => {
  await withTempDir(async (dir) => {
    const pools = await dirPool(dir);
    const src = await pools.createVolume("default", { name: "src", size: "64M" });
    writePattern(src.path, 32 * MiB, MiB, 0x5a);
    const progress: number[] = [];
    const copy = await pools.volumeAction("default", "src", "clone", { target: "copy" }, {
      onProgress: (done) => progress.push(done),
    });
    assert.equal(copy.format, "raw");
    assert.ok(hasPattern(copy.path, 32 * MiB, MiB, 0x5a));
    assert.ok(copy.allocatedSize < 4 * MiB, `the copy stays sparse (${copy.allocatedSize} bytes)`);
    assert.equal(progress.at(-1), 64 * MiB, "progress reaches the full size");

    const q = await pools.volumeAction("default", "copy", "convert", { format: "qcow2" });
    assert.equal(judgeImage(q.path).format, "qcow2");
    assert.ok(hasPattern(q.path, 32 * MiB, MiB, 0x5a));
    await pools.volumeAction("default", "copy", "export", {
      target: `${dir}/out.raw`,
      format: "raw",
    });
    assert.equal(judgeImage(`${dir}/out.raw`).format, "raw");
    assert.ok(hasPattern(`${dir}/out.raw`, 32 * MiB, MiB, 0x5a));
    await rejectsWithPoolError(
      () => pools.volumeAction("default", "copy", "export", { target: `${dir}/out.raw` }),
      "conflict",
      /exists/,
    );
    const imported = await pools.createVolume("default", {
      name: "imp",
      import: `${dir}/out.raw`,
      format: "qcow2",
    });
    assert.equal(judgeImage(imported.path).format, "qcow2");
    assert.ok(hasPattern(imported.path, 32 * MiB, MiB, 0x5a));
    for (const name of ["src", "imp"]) {
      const wiped = await pools.volumeAction("default", name, "wipe", {});
      assert.ok(hasPattern(wiped.path, 32 * MiB, MiB, 0), `${name} reads zeroes after wipe`);
      assert.equal(wiped.virtualSize, 64 * MiB);
    }
  });
});

poolTest("a shared pool starts only on a mount point and is marked shared", ["mount"], async () => {
  await withTempDir(async (dir) => {
    const pools = new PoolManager({ stateDir: `${dir}/state` });
    Deno.mkdirSync(`${dir}/shared`);
    pools.define({ name: "nfs", type: "shared", path: `${dir}/shared` });
    pools.build("nfs");
    await rejectsWithPoolError(() => pools.start("nfs"), "conflict", /not a mount point/);
    sh("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", `${dir}/shared`);
    try {
      const info = pools.start("nfs");
      assert.equal(info.shared, true);
      assert.equal(info.state, "active");
      assert.equal(info.capacityBytes, 64 * MiB);
    } finally {
      sh("umount", `${dir}/shared`);
    }
  });
});
