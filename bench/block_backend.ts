/**
 * Block backend: the real virtio-blk device (VirtioBlock on a RawDisk, served from a split
 * virtqueue in guest memory that a host-side driver harness fills, no guest CPU) against the
 * host's own pread/pwrite on the same file, in the same run and through the same FFI.
 *
 * - seq read / seq write: 64 KiB requests across the whole file, MiB/s.
 * - random read: 4 KiB requests at random 4 KiB-aligned offsets (the same sequence on both
 *   sides), IOPS.
 *
 * Both sides use O_DIRECT by default, so the page cache helps neither (the figures are the
 * virtual disk's); `--cached` uses the page cache on both sides instead, after one warm-up
 * read of the whole file (then the figures are memory copies and the device's overhead shows
 * the most). The device is notified once per batch of `--depth` requests, as a guest driver
 * would kick after queueing; the baseline does one syscall per request. Rounds alternate
 * device and host; the median round counts.
 *
 * Usage: deno run -A bench/block_backend.ts [--size-mib 256] [--rounds 5] [--depth 16]
 *          [--random-count 20000] [--cached] [--dir /var/tmp]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GuestMemory } from "../core/guest_memory.ts";
import { closeFd } from "../ffi/libc.ts";
import { PinnedBuffer, tryOpen } from "../ffi/fs.ts";
import { HostMapping } from "../ffi/mman.ts";
import { O_CLOEXEC, O_DIRECT, O_RDWR } from "../ffi/libc_symbols.ts";
import { RawDisk } from "../storage/raw_disk.ts";
import { VIRTIO_BLK_F, VirtioBlock } from "../devices/virtio/block.ts";
import { VIRTIO_BLK_S, VIRTIO_BLK_T } from "../devices/virtio/block_request.ts";
import { SplitQueue } from "../devices/virtio/queue.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { VIRTIO_F } from "../devices/virtio/virtio_device.ts";
import { CouldNotMeasureError, fixed, median, runBenchmark } from "./_support.ts";

const KIB = 1024;
const MIB = 1024 * 1024;
const QUEUE_SIZE = 256;
/** Guest layout: queue at 0, per-slot headers and status bytes at 64 KiB, data at 1 MiB. */
const HEADERS_AT = 64 * KIB;
const DATA_AT = MIB;

interface Workload {
  name: string;
  type: "read" | "write";
  blockSize: number;
  offsets: Float64Array;
}

/** The device side: guest memory, queue, driver harness, device. */
class DeviceRig {
  readonly memory: GuestMemory;
  readonly #driver: SplitQueueDriver;
  readonly #device: VirtioBlock;
  readonly #depth: number;

  constructor(memory: GuestMemory, disk: RawDisk, depth: number) {
    this.memory = memory;
    this.#depth = depth;
    this.#driver = new SplitQueueDriver(memory, { base: 0, size: QUEUE_SIZE, eventIdx: true });
    const features = VIRTIO_F.VERSION_1 | VIRTIO_BLK_F.FLUSH | this.#driver.features;
    const queue = new SplitQueue(memory, this.#driver.config, { features });
    this.#device = new VirtioBlock({ disk, queueSize: QUEUE_SIZE });
    this.#device.activate({
      memory,
      features,
      queues: [queue],
      interrupt: { usedBuffer: () => {}, configChanged: () => {} },
      fail: (reason) => {
        throw new CouldNotMeasureError(`the device failed: ${reason}`);
      },
    });
  }

  /** Runs `workload` through the device; returns seconds. */
  run(workload: Workload): number {
    const { blockSize, offsets } = workload;
    const type = workload.type === "read" ? VIRTIO_BLK_T.IN : VIRTIO_BLK_T.OUT;
    const start = performance.now();
    for (let first = 0; first < offsets.length; first += this.#depth) {
      const end = Math.min(first + this.#depth, offsets.length);
      for (let i = first; i < end; i++) {
        const slot = i - first;
        const header = HEADERS_AT + slot * 32;
        const status = header + 16;
        this.memory.writeU32(header, type);
        this.memory.writeU64(header + 8, offsets[i] / 512);
        this.memory.writeU8(status, 0xff);
        this.#driver.add([
          { address: header, length: 16 },
          { address: DATA_AT + slot * blockSize, length: blockSize, writable: type === 0 },
          { address: status, length: 1, writable: true },
        ]);
      }
      this.#driver.publish();
      this.#device.notify(0);
      const used = this.#driver.takeUsed();
      if (used.length !== end - first) {
        throw new CouldNotMeasureError(`${end - first} requests sent, ${used.length} completed`);
      }
      for (let slot = 0; slot < end - first; slot++) {
        if (this.memory.readU8(HEADERS_AT + slot * 32 + 16) !== VIRTIO_BLK_S.OK) {
          throw new CouldNotMeasureError(
            `request ${first + slot} failed: ${this.#device.stats.errors} errors`,
          );
        }
      }
    }
    return (performance.now() - start) / 1000;
  }

  close(): void {
    this.#device.close();
  }
}

/** The baseline: pread/pwrite on the same file into the same memory. */
function hostRun(fd: number, memory: Uint8Array, workload: Workload, depth: number): number {
  const { blockSize, offsets } = workload;
  const read = workload.type === "read";
  const buffers = Array.from(
    { length: depth },
    (_, slot) =>
      new PinnedBuffer(
        memory.subarray(DATA_AT + slot * blockSize, DATA_AT + (slot + 1) * blockSize),
      ),
  );
  const start = performance.now();
  for (let i = 0; i < offsets.length; i++) {
    const buffer = buffers[i % depth];
    const done = read ? buffer.pread(fd, offsets[i]) : buffer.pwrite(fd, offsets[i]);
    if (done !== blockSize) {
      throw new CouldNotMeasureError(`host ${workload.type} at ${offsets[i]} returned ${done}`);
    }
  }
  return (performance.now() - start) / 1000;
}

function sequential(size: number, blockSize: number): Float64Array {
  return Float64Array.from({ length: size / blockSize }, (_, i) => i * blockSize);
}

function random(size: number, blockSize: number, count: number): Float64Array {
  let seed = 0x2545f491;
  const blocks = size / blockSize;
  return Float64Array.from({ length: count }, () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) % blocks) * blockSize;
  });
}

async function createImage(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const chunk = new Uint8Array(MIB);
    for (let at = 0; at < size; at += MIB) {
      for (let i = 0; i < chunk.length; i += 4096) chunk[i] = (at + i) / 4096;
      await file.write(chunk);
    }
    await file.sync();
  } finally {
    file.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      "size-mib": { type: "string", default: "256" },
      rounds: { type: "string", default: "5" },
      depth: { type: "string", default: "16" },
      "random-count": { type: "string", default: "20000" },
      cached: { type: "boolean", default: false },
      dir: { type: "string", default: "/var/tmp" },
    },
  }).values;
  const size = Number(args["size-mib"]) * MIB;
  const rounds = Number(args.rounds);
  const depth = Math.min(Number(args.depth), 64);
  const direct = !args.cached;
  const path = `${args.dir}/denovisor-bench-blk-${Deno.pid}.img`;
  console.log(
    `block backend: ${size / MIB} MiB raw image in ${args.dir}, ${
      direct ? "O_DIRECT on both sides" : "page cache on both sides (warmed)"
    }, ${depth} requests per notify, median of ${rounds} rounds`,
  );
  await createImage(path, size);
  const ramSize = DATA_AT + depth * 64 * KIB;
  const mapping = HostMapping.anonymous(ramSize);
  const ram = mapping.bytes();
  const memory = new GuestMemory([{ start: 0, bytes: ram }]);
  let hostFd = -1;
  let rig: DeviceRig | undefined;
  try {
    const flags = O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0);
    // The baseline fd is opened first and without the OFD lock, so RawDisk's lock succeeds.
    hostFd = tryOpen(path, flags);
    if (hostFd < 0) {
      throw new CouldNotMeasureError(`cannot open ${path}${direct ? " with O_DIRECT" : ""}`);
    }
    rig = new DeviceRig(memory, RawDisk.open(path, { direct }), depth);
    const workloads: Workload[] = [
      {
        name: "seq read 64 KiB",
        type: "read",
        blockSize: 64 * KIB,
        offsets: sequential(size, 64 * KIB),
      },
      {
        name: "seq write 64 KiB",
        type: "write",
        blockSize: 64 * KIB,
        offsets: sequential(size, 64 * KIB),
      },
      {
        name: "rand read 4 KiB",
        type: "read",
        blockSize: 4 * KIB,
        offsets: random(size, 4 * KIB, Number(args["random-count"])),
      },
    ];
    if (!direct) hostRun(hostFd, ram, workloads[0], depth); // warm the page cache
    const targets = [0.9, 0.9, 0.8];
    let missed = 0;
    for (const [index, workload] of workloads.entries()) {
      const deviceTimes: number[] = [];
      const hostTimes: number[] = [];
      for (let round = 0; round < rounds; round++) {
        if (round % 2 === 0) {
          deviceTimes.push(rig.run(workload));
          hostTimes.push(hostRun(hostFd, ram, workload, depth));
        } else {
          hostTimes.push(hostRun(hostFd, ram, workload, depth));
          deviceTimes.push(rig.run(workload));
        }
      }
      const count = workload.offsets.length;
      const bytes = count * workload.blockSize;
      const device = median(deviceTimes);
      const host = median(hostTimes);
      const ratio = host / device;
      const target = targets[index];
      if (ratio < target) missed++;
      const figure = (seconds: number) =>
        workload.blockSize >= 64 * KIB
          ? `${fixed(bytes / MIB / seconds, 0)} MiB/s`
          : `${fixed(count / seconds / 1000, 1)} kIOPS`;
      console.log(
        `${workload.name.padEnd(18)} device ${figure(device).padStart(12)}  host ${
          figure(host).padStart(12)
        }  ratio ${fixed(ratio)}x (target >= ${target}x${ratio >= target ? "" : ", MISSED"})`,
      );
    }
    console.log(missed === 0 ? "all targets met" : `${missed} target(s) missed`);
  } finally {
    rig?.close();
    closeFd(hostFd);
    mapping.unmap();
    await Deno.remove(path).catch(() => {});
  }
}

if (import.meta.main) await runBenchmark("block_backend", main);
