/**
 * qcow2 engine: Denovisor's qcow2 against Denovisor's raw disk on the same workload, and
 * against `qemu-img bench` on the same image, in one run.
 *
 * Workloads (page cache on every side, as `qemu-img bench` runs by default):
 * - rand read / rand write 4 KiB: `qemu-img bench` has no random mode, so every side uses
 *   its strided pattern (offset += 1 MiB + 4 KiB, modulo the image size), which scatters
 *   requests over the whole image;
 * - seq read / seq write 64 KiB: one pass over the image.
 * Each runs on a fully allocated image (made by `qemu-img convert` from random data) and on
 * an empty one (recreated before every write round, so writes allocate). Denovisor issues
 * requests one at a time through the `Disk` interface; `qemu-img bench` keeps `--depth`
 * requests in flight (default 64) through its thread pool. Rounds alternate the sides;
 * the median counts.
 *
 * Usage: deno run -A bench/qcow2.ts [--size-mib 256] [--rounds 3] [--count 50000]
 *          [--depth 64] [--dir /var/tmp]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createImage, type Image, openImage } from "../storage/image.ts";
import { CouldNotMeasureError, fixed, median, runBenchmark, runQuiet } from "./_support.ts";

const KIB = 1024;
const MIB = 1024 * 1024;
/** The stride of the "random" workloads: 1 MiB + 4 KiB. */
const STRIDE = MIB + 4 * KIB;

interface Workload {
  name: string;
  write: boolean;
  blockSize: number;
  step: number;
  count: number;
}

/** Runs `workload` on `image`; returns seconds. */
function denovisorRun(image: Image, workload: Workload, buffer: Uint8Array): number {
  const buffers = [buffer.subarray(0, workload.blockSize)];
  const size = image.size;
  let offset = 0;
  const start = performance.now();
  for (let i = 0; i < workload.count; i++) {
    if (workload.write) image.write(offset, buffers);
    else image.read(offset, buffers);
    offset += workload.step;
    if (offset + workload.blockSize > size) offset %= size;
  }
  return (performance.now() - start) / 1000;
}

/** Runs `workload` with `qemu-img bench` on the qcow2 image at `path`; returns seconds. */
async function qemuRun(path: string, workload: Workload, depth: number): Promise<number> {
  const args = [
    "bench",
    "-f",
    "qcow2",
    "-c",
    String(workload.count),
    "-d",
    String(depth),
    "-s",
    String(workload.blockSize),
    "-S",
    String(workload.step),
    ...(workload.write ? ["-w", "--pattern=90"] : []),
    path,
  ];
  const result = await runQuiet("qemu-img", args);
  const match = /Run completed in ([0-9.]+) seconds/.exec(result.stdout);
  if (result.code !== 0 || match === null) {
    throw new CouldNotMeasureError(`qemu-img ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  }
  return Number(match[1]);
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      "size-mib": { type: "string", default: "256" },
      rounds: { type: "string", default: "3" },
      count: { type: "string", default: "50000" },
      depth: { type: "string", default: "64" },
      dir: { type: "string", default: "/var/tmp" },
    },
  }).values;
  const size = Number(args["size-mib"]) * MIB;
  const rounds = Number(args.rounds);
  const depth = Number(args.depth);
  const count = Number(args.count);
  const dir = Deno.makeTempDirSync({ dir: args.dir, prefix: "denovisor-bench-qcow2-" });
  console.log(
    `qcow2: ${
      size / MIB
    } MiB images in ${args.dir}, page cache; Denovisor one request at a time, qemu-img bench depth ${depth}; median of ${rounds} rounds`,
  );
  const rawFull = `${dir}/full.raw`;
  const qcowFull = `${dir}/full.qcow2`;
  const random = new Uint8Array(MIB);
  const file = Deno.openSync(rawFull, { write: true, create: true });
  for (let at = 0; at < size; at += MIB) {
    crypto.getRandomValues(random.subarray(0, 65536));
    random.copyWithin(65536, 0, MIB - 65536);
    file.writeSync(random);
  }
  file.close();
  const converted = await runQuiet("qemu-img", ["convert", "-O", "qcow2", rawFull, qcowFull]);
  if (converted.code !== 0) throw new CouldNotMeasureError(`qemu-img convert: ${converted.stderr}`);
  const buffer = new Uint8Array(MIB); // large: outside V8's heap, its address is cached
  buffer.fill(90);
  const workloads: Workload[] = [
    { name: "rand read 4 KiB", write: false, blockSize: 4 * KIB, step: STRIDE, count },
    { name: "rand write 4 KiB", write: true, blockSize: 4 * KIB, step: STRIDE, count },
    {
      name: "seq read 64 KiB",
      write: false,
      blockSize: 64 * KIB,
      step: 64 * KIB,
      count: size / (64 * KIB),
    },
    {
      name: "seq write 64 KiB",
      write: true,
      blockSize: 64 * KIB,
      step: 64 * KIB,
      count: size / (64 * KIB),
    },
  ];
  const emptyQcow = `${dir}/empty.qcow2`;
  const emptyRaw = `${dir}/empty.raw`;
  const makeEmpty = () => {
    for (const path of [emptyQcow, emptyRaw]) {
      try {
        Deno.removeSync(path);
      } catch { /* first round */ }
    }
    createImage(emptyQcow, { format: "qcow2", size });
    createImage(emptyRaw, { format: "raw", size });
  };
  let target = "";
  try {
    for (const allocated of [true, false]) {
      for (const workload of workloads) {
        const ours: number[] = [];
        const raws: number[] = [];
        const qemus: number[] = [];
        for (let round = 0; round < rounds; round++) {
          if (!allocated) makeEmpty();
          const qcowPath = allocated ? qcowFull : emptyQcow;
          const rawPath = allocated ? rawFull : emptyRaw;
          const measure = (path: string, into: number[]) => {
            const image = openImage(path);
            try {
              into.push(denovisorRun(image, workload, buffer));
            } finally {
              image.close();
            }
          };
          if (round % 2 === 0) {
            measure(qcowPath, ours);
            measure(rawPath, raws);
            if (!allocated) makeEmpty();
            qemus.push(await qemuRun(qcowPath, workload, depth));
          } else {
            qemus.push(await qemuRun(qcowPath, workload, depth));
            if (!allocated) makeEmpty();
            measure(qcowPath, ours);
            measure(rawPath, raws);
          }
        }
        const figure = (seconds: number) =>
          workload.blockSize >= 64 * KIB
            ? `${fixed(workload.count * workload.blockSize / MIB / seconds, 0)} MiB/s`
            : `${fixed(workload.count / seconds / 1000, 1)} kIOPS`;
        const mine = median(ours);
        const vsRaw = median(raws) / mine;
        const vsQemu = median(qemus) / mine;
        const label = `${allocated ? "allocated" : "empty"} ${workload.name}`;
        console.log(
          `${label.padEnd(27)} qcow2 ${figure(mine).padStart(12)}  raw ${
            figure(median(raws)).padStart(12)
          } (${fixed(vsRaw)}x raw)  qemu-img bench ${figure(median(qemus)).padStart(12)} (${
            fixed(vsQemu)
          }x qemu-img bench)`,
        );
        if (allocated && workload.name === "rand read 4 KiB") {
          target = `target: >= 1.0x qemu-img bench for 4 KiB random read, allocated: ${
            fixed(vsQemu)
          }x (${vsQemu >= 1 ? "met" : "MISSED"})`;
        }
      }
    }
    console.log(target);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await runBenchmark("qcow2", main);
