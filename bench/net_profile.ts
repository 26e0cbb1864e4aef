/**
 * Where virtio-net's time per frame goes, apart from the tap: the cost of one system call
 * through Deno FFI on this host, of a `writev` of a frame's two buffers to /dev/null, and
 * of the device's own work per transmitted frame (with /dev/null standing in for the tap,
 * so the kernel's network path is left out), split into its parts. Every figure is the
 * median of the rounds, in microseconds per frame; bench/net.ts gives the tap's figures.
 *
 * Usage: deno run -A bench/net_profile.ts [--frames N] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GuestMemory } from "../core/guest_memory.ts";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../ffi/libc_symbols.ts";
import { IovecArray, writev } from "../ffi/iovec.ts";
import { NET_F } from "../devices/virtio/net_header.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { SplitQueue } from "../devices/virtio/queue.ts";
import { ChainBuffers } from "../devices/virtio/queue_types.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { VIRTIO_F } from "../devices/virtio/virtio_device.ts";
import { CouldNotMeasureError, fixed, median, runBenchmark } from "./_support.ts";

const BATCH = 256;
const TX_RING = 0x10000;
const SPARE_RING = 0x80000;
const FRAME = 0x100000;
const FEATURES = VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS;
const chain = [{ address: FRAME, length: 12 }, { address: FRAME + 12, length: 1500 }];

/** Microseconds per frame of `body`, which serves one published batch of `chain`s. */
function perFrame(driver: SplitQueueDriver, frames: number, body: () => void): number {
  let ms = 0;
  for (let done = 0; done < frames; done += BATCH) {
    for (let i = 0; i < BATCH; i++) driver.add(chain);
    driver.publish();
    const start = performance.now();
    body();
    ms += performance.now() - start;
    driver.takeUsed();
  }
  return (ms * 1000) / (Math.ceil(frames / BATCH) * BATCH);
}

function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      frames: { type: "string", default: "300000" },
      rounds: { type: "string", default: "5" },
    },
  });
  const frames = Number(values.frames);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(frames) || frames < BATCH || frames > 10_000_000) {
    throw new CouldNotMeasureError(`--frames must be ${BATCH} to 10000000`);
  }
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    throw new CouldNotMeasureError("--rounds must be 1 to 50");
  }
  const nul = openFile("/dev/null", O_RDWR | O_CLOEXEC);
  try {
    const memory = GuestMemory.ofSize(2 << 20);
    const tx = new SplitQueueDriver(memory, { base: TX_RING, size: 1024 });
    const spare = new SplitQueueDriver(memory, { base: SPARE_RING, size: 1024 });
    const net = new VirtioNet({
      tap: { name: "null", fd: nul, supportedOffloads: 0, setOffloads() {} },
      mergeableRxBuffers: false,
    });
    net.activate({
      memory,
      features: FEATURES,
      queues: [
        new SplitQueue(memory, spare.config, { features: FEATURES }),
        new SplitQueue(memory, tx.config, { features: FEATURES }),
      ],
      interrupt: { usedBuffer() {}, configChanged() {} },
      fail(reason) {
        throw new CouldNotMeasureError(`the device failed: ${reason}`);
      },
    });
    const queue = new SplitQueue(memory, spare.config, { features: FEATURES });
    const out = new ChainBuffers();
    const iovecs = new IovecArray();
    const fixedIovecs = new IovecArray();
    fixedIovecs.add(memory.slice(FRAME, 12));
    fixedIovecs.add(memory.slice(FRAME + 12, 1500));
    const popPush = (): number =>
      perFrame(spare, frames, () => {
        while (queue.popInto(out)) queue.push(out.head, 0);
      });
    const rows: Array<[string, () => number]> = [
      ["system call through FFI (writev to a bad fd)", () =>
        perFrame(spare, frames, () => {
          while (queue.popInto(out)) queue.push(out.head, 0);
          for (let i = 0; i < BATCH; i++) writev(-1, fixedIovecs);
        }) - popPush()],
      ["writev of header + 1500 bytes to /dev/null", () =>
        perFrame(spare, frames, () => {
          while (queue.popInto(out)) queue.push(out.head, 0);
          for (let i = 0; i < BATCH; i++) writev(nul, fixedIovecs);
        }) - popPush()],
      ["device tx to /dev/null, all of it", () => perFrame(tx, frames, () => net.notify(1))],
      ["  of which: pop the chain and return it", popPush],
      ["  of which: build the iovecs", () =>
        perFrame(spare, frames, () => {
          while (queue.popInto(out)) {
            iovecs.clear();
            for (let i = 0; i < out.count; i++) {
              iovecs.tryAddRange(out.sources[i], out.offsets[i], out.lengths[i], 1);
            }
            queue.push(out.head, 0);
          }
        }) - popPush()],
    ];
    const results = rows.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      rows.forEach(([, measure], i) => results[i].push(measure()));
    }
    console.log(`virtio-net per-frame costs, µs per frame, median of ${rounds} rounds:`);
    rows.forEach(([name], i) => {
      console.log(`  ${name.padEnd(46)} ${fixed(median(results[i]), 3)}`);
    });
    console.log(
      `  device work beyond its writev                 ${
        fixed(median(results[2]) - median(results[1]), 3)
      }`,
    );
    net.close();
  } finally {
    closeFd(nul);
  }
  return Promise.resolve();
}

await runBenchmark("bench/net_profile.ts", main);
