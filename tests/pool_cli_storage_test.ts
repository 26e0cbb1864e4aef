/**
 * `denovisor pool` and `denovisor vol` end to end, through a real API socket, on real XFS
 * and btrfs filesystems and a loop block device: an instant reflink clone, a btrfs
 * snapshot rollback and GPT partition volumes, all judged by qemu-img/qemu-io.
 */

import assert from "node:assert/strict";
import type { PoolInfo, VolumeInfo } from "../manager/api_types.ts";
import { denovisor } from "./cli_support.ts";
import {
  hasPattern,
  judgeImage,
  poolTest,
  sh,
  withFilesystem,
  withLoopDevice,
  withPoolApi,
  withTempDir,
  writePattern,
} from "./pool_support.ts";

const MiB = 1024 * 1024;
const TOOLS = ["losetup", "mkfs.xfs", "mkfs.btrfs", "btrfs", "filefrag", "qemu-img", "qemu-io"];

poolTest(
  "the CLI on XFS, btrfs and a loop disk: reflink clone, snapshot rollback, partitions",
  TOOLS,
  async () => {
    await withTempDir(async (dir) => {
      await withPoolApi(dir, {}, async (socket) => {
        const cli = async (...args: string[]) => {
          const r = await denovisor([...args, "--socket", socket]);
          assert.equal(r.code, 0, `denovisor ${args.join(" ")}: ${r.stderr}`);
          return r.stdout;
        };
        const json = async <T>(...args: string[]) => JSON.parse(await cli(...args, "--json")) as T;

        await withFilesystem(dir, "xfs", 512, async (xfs) => {
          await cli("pool", "define", "fast", "--type", "dir", "--path", `${xfs}/images`);
          await cli("pool", "build", "fast");
          await cli("pool", "start", "fast");
          const vol = await json<VolumeInfo>("vol", "create", "fast", "base.img", "96M");
          writePattern(vol.path, 0, 96 * MiB, 0x42);
          const clone = await json<VolumeInfo>("vol", "clone", "fast/base.img", "vm1.img");
          assert.match(sh("filefrag", "-v", clone.path), /shared/);
          assert.ok(hasPattern(clone.path, 0, 96 * MiB, 0x42));
          const linked = await json<VolumeInfo>("vol", "clone", "fast/base.img", "vm2", "--linked");
          assert.deepEqual(linked.backingChain, [vol.path]);
          judgeImage(linked.path);
          assert.match(await cli("vol", "list", "fast"), /vm2\s+qcow2\+/);
          for (const v of ["vm2", "vm1.img", "base.img"]) await cli("vol", "delete", `fast/${v}`);
          await cli("pool", "stop", "fast");
          await cli("pool", "undefine", "fast", "--delete");
        });

        await withFilesystem(dir, "btrfs", 512, async (btrfs) => {
          await cli("pool-define-as", "snap", "btrfs", `${btrfs}/pool`);
          await cli("pool-build", "snap");
          await cli("pool-start", "snap");
          const vol = await json<VolumeInfo>("vol-create-as", "snap", "db", "32M");
          writePattern(vol.path, 0, 4 * MiB, 0x01);
          await cli("vol", "snapshot", "snap/db", "good");
          writePattern(vol.path, 0, 4 * MiB, 0x02);
          assert.ok(hasPattern(vol.path, 0, 4 * MiB, 0x02));
          await cli("vol", "rollback", "snap/db", "good");
          assert.ok(hasPattern(vol.path, 0, 4 * MiB, 0x01), "the rollback restored the snapshot");
          const info = await json<VolumeInfo>("vol", "info", "db", "--pool", "snap");
          assert.deepEqual(info.snapshots, ["good"]);
          await cli("vol", "snapshot-delete", "snap/db", "good");
          await cli("vol", "delete", "snap/db");
          await cli("pool-destroy", "snap");
          await cli("pool-undefine", "snap");
        });

        await withLoopDevice(dir, 128, async (disk) => {
          await cli("pool", "define", "raw", "--type", "block", "--path", disk);
          await cli("pool", "build", "raw");
          await cli("pool", "start", "raw");
          const a = await json<VolumeInfo>("vol", "create", "raw", "a", "24M");
          assert.equal(a.path, `${disk}p1`);
          assert.equal(Number(sh("blockdev", "--getsize64", a.path).trim()), 24 * MiB);
          const pool = await json<PoolInfo>("pool", "info", "raw");
          assert.equal(pool.volumes, 1);
          assert.equal(pool.capacityBytes, 128 * MiB);
          await cli("vol", "delete", "raw/a");
          await cli("pool", "stop", "raw");
          await cli("pool", "delete", "raw");
          // blkid exits 2 when it finds no signature: the label is gone.
          assert.throws(() => sh("blkid", "-p", disk), /failed/);
        });
      });
    });
  },
);
