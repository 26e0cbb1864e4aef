/**
 * Telling the kernel about partition changes with the BLKPG ioctl (add, delete, resize
 * one partition), which works while other partitions of the disk are open — unlike
 * BLKRRPART, which refuses a disk with any partition in use.
 *
 * @module
 */

import { basename } from "node:path";
import { addressOf, closeFd, ioctlBytes, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../../ffi/libc_symbols.ts";
import { type GptTable, SECTOR } from "./gpt.ts";

/** ioctl(BLKPG) = _IO(0x12, 105). */
const BLKPG = 0x1269n;
const BLKPG_ADD_PARTITION = 1;
const BLKPG_DEL_PARTITION = 2;
const BLKPG_RESIZE_PARTITION = 3;
/** struct blkpg_partition: start, length (bytes), pno, devname[64], volname[64]; padded. */
const PARTITION_SIZE = 152;

interface KernelPartition {
  number: number;
  start: number;
  size: number;
}

/** The partitions the kernel currently has for `disk` (from sysfs), in bytes. */
export function kernelPartitions(disk: string): KernelPartition[] {
  const name = basename(Deno.realPathSync(disk));
  const dir = `/sys/class/block/${name}`;
  const found: KernelPartition[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.startsWith(name) || entry.name === name) continue;
    const read = (file: string) => Number(Deno.readTextFileSync(`${dir}/${entry.name}/${file}`));
    try {
      found.push({
        number: read("partition"),
        start: read("start") * 512,
        size: read("size") * 512,
      });
    } catch {
      // Not a partition directory.
    }
  }
  return found;
}

/** Makes the kernel's partitions of `disk` match `table` (deletions first). */
export function syncKernelPartitions(disk: string, table: GptTable | undefined): void {
  const wanted = new Map(
    (table?.partitions ?? []).map((p) => [p.number, {
      start: p.firstLba * SECTOR,
      size: (p.lastLba - p.firstLba + 1) * SECTOR,
    }]),
  );
  const fd = openFile(disk, O_RDONLY | O_CLOEXEC);
  try {
    const present = kernelPartitions(disk);
    for (const k of present) {
      const w = wanted.get(k.number);
      if (!w || w.start !== k.start) blkpg(fd, disk, BLKPG_DEL_PARTITION, k.number, 0, 0);
    }
    for (const [number, w] of wanted) {
      const k = present.find((p) => p.number === number);
      if (!k || k.start !== w.start) blkpg(fd, disk, BLKPG_ADD_PARTITION, number, w.start, w.size);
      else if (k.size !== w.size) blkpg(fd, disk, BLKPG_RESIZE_PARTITION, number, w.start, w.size);
    }
  } finally {
    closeFd(fd);
  }
}

function blkpg(fd: number, disk: string, op: number, number: number, start: number, size: number) {
  const partition = new Uint8Array(PARTITION_SIZE);
  const pv = new DataView(partition.buffer);
  pv.setBigInt64(0, BigInt(start), true);
  pv.setBigInt64(8, BigInt(size), true);
  pv.setInt32(16, number, true);
  const arg = new Uint8Array(24);
  const av = new DataView(arg.buffer);
  av.setInt32(0, op, true);
  av.setInt32(8, PARTITION_SIZE, true);
  av.setBigUint64(16, BigInt(addressOf(partition)), true); // `partition` outlives the ioctl
  const what = ["", "add", "delete", "resize"][op];
  ioctlBytes(fd, BLKPG, arg, `ioctl(BLKPG ${what} partition ${number} of ${disk})`);
}
