/**
 * `block` pools: a disk whose GPT partitions are the volumes (raw only). The label is
 * written by gpt.ts; the kernel learns of each change through the BLKPG ioctl (blkpg.ts),
 * which works while other partitions of the disk are open. A loop device needs partition
 * scanning on (`losetup -P`). New volumes are zeroed (BLKZEROOUT) so they never show an
 * old volume's data.
 *
 * @module
 */

import { basename } from "node:path";
import type { PoolType } from "./pool_types.ts";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../../ffi/libc_symbols.ts";
import type { PoolBackend, PoolCapacity } from "./backend.ts";
import { zeroOutDevice } from "./file_clone.ts";
import {
  ALIGN_SECTORS,
  deviceSize,
  emptyGpt,
  findFreeRun,
  freeSlot,
  type GptPartition,
  type GptTable,
  LINUX_DATA_GUID,
  readGpt,
  SECTOR,
  writeGpt,
} from "./gpt.ts";
import { pathExists, PoolError } from "./pool_error.ts";
import { syncKernelPartitions } from "./blkpg.ts";

/** A partitioned block device. */
export class BlockPool implements PoolBackend {
  readonly type: PoolType = "block";
  readonly fileBased = false;
  readonly shared = false;
  readonly formats = ["raw"] as const;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  build(options: { overwrite?: boolean }): void {
    this.#requireDevice();
    const existing = readGpt(this.path);
    if (!options.overwrite) {
      if (existing) {
        throw new PoolError(
          "conflict",
          `${this.path} already has a GPT label with ${existing.partitions.length} partitions; ` +
            `start the pool to use it, or build with --overwrite to erase them`,
        );
      }
      const signature = this.#signature();
      if (signature) {
        throw new PoolError(
          "conflict",
          `${this.path} holds data (${signature}); build with --overwrite to erase it`,
        );
      }
    }
    writeGpt(this.path, emptyGpt(Math.floor(deviceSize(this.path) / SECTOR)));
    this.#tellKernel();
  }

  /** What blkid finds on the device, or "" for a blank one. */
  #signature(): string {
    const out = new Deno.Command("blkid", {
      args: ["-p", "-o", "export", this.path],
      stdout: "piped",
    })
      .outputSync();
    const text = new TextDecoder().decode(out.stdout);
    const type = /^(?:PTTYPE|TYPE)=(.*)$/m.exec(text)?.[1];
    if (type) return `a ${type} signature`;
    const file = Deno.openSync(this.path, { read: true });
    try {
      const head = new Uint8Array(1024 * 1024);
      const n = file.readSync(head) ?? 0;
      return head.subarray(0, n).some((b) => b !== 0) ? "non-zero bytes in its first MiB" : "";
    } finally {
      file.close();
    }
  }

  start(): void {
    this.#requireDevice();
    this.#table();
    this.#tellKernel();
  }

  #requireDevice(): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.path);
    } catch {
      throw new PoolError("conflict", `Block device ${this.path} does not exist`);
    }
    if (!info.isBlockDevice) {
      throw new PoolError(
        "invalid",
        `${this.path} is not a block device; use a dir pool for files`,
      );
    }
  }

  #table(): GptTable {
    const table = readGpt(this.path);
    if (!table) {
      throw new PoolError(
        "conflict",
        `${this.path} has no GPT label; build the pool first ('denovisor pool build NAME')`,
      );
    }
    return table;
  }

  /** Makes the kernel's partitions match the label (BLKPG, see blkpg.ts). */
  #tellKernel(): void {
    syncKernelPartitions(this.path, readGpt(this.path));
  }

  destroy(): void {
    const table = readGpt(this.path);
    if (!table) return;
    if (table.partitions.length > 0) {
      throw new PoolError(
        "conflict",
        `${this.path} still has ${table.partitions.length} volumes; delete them first`,
      );
    }
    // Erase both label copies and the protective MBR.
    const file = Deno.openSync(this.path, { write: true });
    try {
      const zeros = new Uint8Array(34 * SECTOR);
      file.seekSync(0, Deno.SeekMode.Start);
      file.writeSync(zeros);
      file.seekSync((table.totalSectors - 33) * SECTOR, Deno.SeekMode.Start);
      file.writeSync(zeros.subarray(0, 33 * SECTOR));
      file.syncSync();
    } finally {
      file.close();
    }
    this.#tellKernel();
  }

  capacity(): PoolCapacity {
    const table = this.#table();
    const capacity = deviceSize(this.path);
    const allocation = table.partitions.reduce(
      (sum, p) => sum + (p.lastLba - p.firstLba + 1) * SECTOR,
      0,
    );
    return { capacity, allocation, available: Math.max(0, this.#largestFree(table) * SECTOR) };
  }

  #largestFree(table: GptTable): number {
    let best = 0;
    let start = table.firstUsableLba;
    for (const p of [...table.partitions].sort((a, b) => a.firstLba - b.firstLba)) {
      best = Math.max(best, p.firstLba - start);
      start = p.lastLba + 1;
    }
    return Math.max(best, table.lastUsableLba + 1 - start) - ALIGN_SECTORS;
  }

  listVolumes(): string[] {
    return this.#table().partitions.map((p) => p.name).filter((n) => n !== "").sort();
  }

  #partition(table: GptTable, name: string): GptPartition | undefined {
    return table.partitions.find((p) => p.name === name);
  }

  volumePath(name: string): string {
    const partition = this.#partition(this.#table(), name);
    if (!partition) return `${this.path}:${name}`;
    return partitionNode(this.path, partition.number);
  }

  allocate(name: string, size: number): string {
    const table = this.#table();
    const sectors = Math.ceil(size / (ALIGN_SECTORS * SECTOR)) * ALIGN_SECTORS;
    const first = findFreeRun(table, sectors);
    if (first === undefined) {
      throw new PoolError(
        "conflict",
        `No free run of ${sectors * SECTOR} bytes on ${this.path}; delete or shrink a volume`,
      );
    }
    const partition = {
      number: freeSlot(table),
      firstLba: first,
      lastLba: first + sectors - 1,
      name,
      typeGuid: LINUX_DATA_GUID,
      uniqueGuid: crypto.randomUUID(),
    };
    table.partitions.push(partition);
    writeGpt(this.path, table);
    this.#tellKernel();
    const node = partitionNode(this.path, partition.number);
    waitForNode(node);
    const fd = openFile(node, O_RDWR | O_CLOEXEC);
    try {
      zeroOutDevice(fd, 0, sectors * SECTOR, node);
    } finally {
      closeFd(fd);
    }
    return node;
  }

  release(name: string): void {
    const table = this.#table();
    table.partitions = table.partitions.filter((p) => p.name !== name);
    writeGpt(this.path, table);
    this.#tellKernel();
  }

  resizeStorage(name: string, size: number): void {
    const table = this.#table();
    const partition = this.#partition(table, name)!;
    const sectors = Math.ceil(size / (ALIGN_SECTORS * SECTOR)) * ALIGN_SECTORS;
    const last = partition.firstLba + sectors - 1;
    const next = table.partitions
      .filter((p) => p.firstLba > partition.firstLba)
      .reduce((min, p) => Math.min(min, p.firstLba), table.lastUsableLba + 1);
    if (last >= next) {
      throw new PoolError(
        "conflict",
        `Volume '${name}' cannot grow to ${sectors * SECTOR} bytes: only ` +
          `${(next - partition.firstLba) * SECTOR} bytes are free after its start on ${this.path}`,
      );
    }
    partition.lastLba = last;
    writeGpt(this.path, table);
    this.#tellKernel();
  }
}

/** The device node of partition `number` of `disk`: sda1, but loop0p1 and nvme0n1p1. */
export function partitionNode(disk: string, number: number): string {
  return /\d$/.test(basename(disk)) ? `${disk}p${number}` : `${disk}${number}`;
}

function waitForNode(node: string): void {
  // devtmpfs creates the node as the kernel adds the partition; allow a moment for udev setups.
  const deadline = Date.now() + 5000;
  while (!pathExists(node)) {
    if (Date.now() > deadline) throw new Error(`Partition ${node} did not appear after partx -u`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}
