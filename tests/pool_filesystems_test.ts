/**
 * Pools on real storage: XFS with reflinks, btrfs with subvolume snapshots, and a loop
 * block device with a GPT label, each made in a temporary directory and torn down in
 * `finally`. qemu-img and qemu-io judge every image.
 */

import assert from "node:assert/strict";
import { PoolError, PoolManager } from "../storage/pool/mod.ts";
import {
  hasPattern,
  judgeImage,
  poolTest,
  sh,
  withFilesystem,
  withLoopDevice,
  withTempDir,
  writePattern,
} from "./pool_support.ts";

const MiB = 1024 * 1024;
const QEMU = ["qemu-img", "qemu-io"];

function usedBytes(path: string): number {
  sh("sync");
  return Number(sh("df", "-B1", "--output=used", path).trim().split("\n")[1]);
}

poolTest(
  "dir pool on XFS: a full clone is an instant reflink sharing every extent",
  ["losetup", "mkfs.xfs", "filefrag", ...QEMU],
  async () => {
    await withTempDir(async (dir) => {
      await withFilesystem(dir, "xfs", 512, async (mnt) => {
        const pools = new PoolManager({ stateDir: `${dir}/state` });
        pools.define({ name: "xfs", type: "dir", path: `${mnt}/images` });
        pools.build("xfs");
        pools.start("xfs");
        const src = await pools.createVolume("xfs", { name: "big.raw", size: "128M" });
        writePattern(src.path, 0, 128 * MiB, 0x61);
        const before = usedBytes(mnt);
        const started = performance.now();
        const clone = await pools.volumeAction("xfs", "big.raw", "clone", { target: "copy.raw" });
        const seconds = (performance.now() - started) / 1000;
        const grew = usedBytes(mnt) - before;
        console.log(
          `reflink clone of 128 MiB: ${seconds.toFixed(3)} s, filesystem grew ${grew} bytes`,
        );
        assert.equal((clone as { method?: string }).method, "reflink");
        assert.ok(grew < 8 * MiB, `a reflink clone allocates no data (grew ${grew} bytes)`);
        assert.match(sh("filefrag", "-v", clone.path), /shared/, "filefrag shows shared extents");
        assert.ok(hasPattern(clone.path, 0, 128 * MiB, 0x61));
        writePattern(clone.path, 0, 4096, 0x62);
        assert.ok(hasPattern(src.path, 0, 4096, 0x61), "writing the clone leaves the source alone");

        const q = await pools.createVolume("xfs", { name: "q", size: "64M", format: "qcow2" });
        writePattern(q.path, MiB, MiB, 0x63);
        const qc = await pools.volumeAction("xfs", "q", "clone", { target: "q2" });
        assert.equal((qc as { method?: string }).method, "reflink");
        assert.equal(judgeImage(qc.path).format, "qcow2");
        assert.ok(hasPattern(qc.path, MiB, MiB, 0x63));
      });
    });
  },
);

poolTest(
  "btrfs pool: a snapshot rollback restores the volume; snapshots are subvolumes",
  ["losetup", "mkfs.btrfs", "btrfs", ...QEMU],
  async () => {
    await withTempDir(async (dir) => {
      await withFilesystem(dir, "btrfs", 512, async (mnt) => {
        const pools = new PoolManager({ stateDir: `${dir}/state` });
        pools.define({ name: "b", type: "btrfs", path: `${mnt}/pool` });
        pools.build("b");
        pools.start("b");
        const vol = await pools.createVolume("b", { name: "web", size: "32M" });
        assert.equal(vol.path, `${mnt}/pool/web/disk`);
        assert.match(sh("btrfs", "subvolume", "show", `${mnt}/pool/web`), /Name:\s+web/);
        writePattern(vol.path, 0, 8 * MiB, 0x11);
        let info = await pools.volumeAction("b", "web", "snapshot", { target: "s1" });
        assert.deepEqual(info.snapshots, ["s1"]);
        assert.equal(info.format, "raw", "a btrfs snapshot leaves the volume as it is");
        assert.match(sh("btrfs", "subvolume", "list", "-r", mnt), /\.snapshots\/web\/s1/);
        writePattern(vol.path, 0, 8 * MiB, 0x22);
        info = await pools.volumeAction("b", "web", "rollback", { snapshot: "s1" });
        assert.ok(hasPattern(vol.path, 0, 8 * MiB, 0x11), "rollback restored the snapshot's data");
        assert.equal(judgeImage(info.path).format, "raw");
        writePattern(vol.path, 0, MiB, 0x33);
        await pools.volumeAction("b", "web", "snapshot", { target: "s2" });
        info = await pools.volumeAction("b", "web", "delete-snapshot", { snapshot: "s1" });
        assert.deepEqual(info.snapshots, ["s2"]);
        await assert.rejects(
          () => pools.volumeAction("b", "web", "commit", {}),
          (e: unknown) => e instanceof PoolError && e.code === "invalid",
        );
        const clone = await pools.volumeAction("b", "web", "clone", { target: "web2" });
        assert.equal((clone as { method?: string }).method, "reflink");
        assert.ok(hasPattern(clone.path, 0, MiB, 0x33));
        await pools.deleteVolume("b", "web");
        assert.doesNotMatch(sh("btrfs", "subvolume", "list", mnt), /web\b(?!2)|\.snapshots\/web\//);
        assert.deepEqual(pools.listVolumes("b").map((v) => v.name), ["web2"]);

        // A pool-level snapshot: every volume at once, rolled back together.
        const other = await pools.createVolume("b", { name: "logs", size: "8M" });
        writePattern(clone.path, 0, MiB, 0x44);
        writePattern(other.path, 0, MiB, 0x45);
        await pools.snapshotPool("b", { target: "nightly" });
        writePattern(clone.path, 0, MiB, 0x46);
        writePattern(other.path, 0, MiB, 0x47);
        await pools.rollbackPool("b", { snapshot: "nightly" });
        assert.ok(hasPattern(clone.path, 0, MiB, 0x44) && hasPattern(other.path, 0, MiB, 0x45));
        assert.deepEqual(pools.volumeInfo("b", "logs").snapshots, ["nightly"]);

        pools.define({ name: "notbtrfs", type: "btrfs", path: `${dir}/plain` });
        assert.throws(() => pools.build("notbtrfs"), /not btrfs/);
      });
    });
  },
);

poolTest(
  "block pool on a loop device: GPT partitions are the volumes",
  ["losetup", "partx", "blkid", ...QEMU],
  async () => {
    await withTempDir(async (dir) => {
      await withLoopDevice(dir, 256, async (device) => {
        const pools = new PoolManager({ stateDir: `${dir}/state` });
        pools.define({ name: "disk", type: "block", path: device });
        // Old data on the disk: build must not erase it without --overwrite.
        sh(
          "dd",
          "if=/dev/urandom",
          `of=${device}`,
          "bs=4096",
          "count=1",
          "conv=fsync",
          "status=none",
        );
        assert.throws(() => pools.build("disk"), /holds data.*--overwrite/);
        pools.build("disk", { overwrite: true });
        assert.match(sh("blkid", "-p", device), /PTTYPE="gpt"/);
        assert.throws(() => pools.build("disk"), /already has a GPT label/);
        pools.start("disk");

        const web = await pools.createVolume("disk", { name: "web", size: "32M" });
        assert.equal(web.path, `${device}p1`);
        assert.equal(web.virtualSize, 32 * MiB);
        assert.ok(Deno.statSync(web.path).isBlockDevice);
        await assert.rejects(
          () => pools.createVolume("disk", { name: "q", size: "8M", format: "qcow2" }),
          /holds raw volumes, not qcow2/,
        );
        writePattern(web.path, 0, 4 * MiB, 0x77);
        const db = await pools.createVolume("disk", { name: "db", size: "16M" });
        assert.ok(hasPattern(db.path, 0, 16 * MiB, 0), "a new volume reads as zeroes");
        assert.match(sh("partx", "--show", "-o", "NR,NAME", device), /1 web[\s\S]*2 db/);

        await assert.rejects(
          () => pools.volumeAction("disk", "web", "resize", { size: "64M" }),
          /cannot grow/,
        );
        const grown = await pools.volumeAction("disk", "db", "resize", { size: "64M" });
        assert.equal(grown.virtualSize, 64 * MiB);
        assert.equal(Number(sh("blockdev", "--getsize64", db.path).trim()), 64 * MiB);

        const copy = await pools.volumeAction("disk", "web", "clone", { target: "web2" });
        assert.ok(hasPattern(copy.path, 0, 4 * MiB, 0x77));
        assert.ok(hasPattern(copy.path, 4 * MiB, 28 * MiB, 0));
        await assert.rejects(
          () => pools.volumeAction("disk", "web", "snapshot", { target: "s" }),
          /cannot take snapshots/,
        );
        await pools.deleteVolume("disk", "web");
        assert.equal(judgeImage(copy.path).format, "raw");
        assert.deepEqual(pools.listVolumes("disk").map((v) => v.name), ["db", "web2"]);
        assert.throws(() => Deno.statSync(`${device}p1`), Deno.errors.NotFound);
        pools.stop("disk");
        assert.throws(() => pools.delete("disk"), /still has 2 volumes/);
      });
    });
  },
);
