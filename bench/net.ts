/**
 * Net: frames per second and throughput of virtio-net through a tap, against a raw tap
 * read/write loop in the same run. The host side is a raw packet socket on the tap; no
 * guest CPU is involved: the device's queues are filled from the host side.
 *
 * - tx: N frames written to the tap by the device (notify on the tx queue, writev from the
 *   chains' buffers) vs `write(tap, header + frame)` in a loop.
 * - rx: frames injected through the packet socket in batches, then drained by the device
 *   (readv into the rx chains' buffers) vs `read(tap)` in a loop; only the drain is timed.
 *
 * The device's queues are real split rings in guest memory, filled and drained by the
 * driver-side harness (devices/virtio/testing/driver_harness.ts), so ring costs count.
 *
 * Usage: deno run -A bench/net.ts [--frames N] [--size BYTES]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { read, write } from "../ffi/fs.ts";
import { GuestMemory } from "../core/guest_memory.ts";
import { VNET_HEADER_SIZE } from "../devices/net/tap.ts";
import {
  drainTap,
  openQuietTap,
  PacketSocket,
  testFrame,
} from "../devices/net/testing/test_tap.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { NET_F } from "../devices/virtio/net_header.ts";
import { VIRTIO_F } from "../devices/virtio/virtio_device.ts";
import { SplitQueue } from "../devices/virtio/queue.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { CouldNotMeasureError, fixed, runBenchmark } from "./_support.ts";

const BATCH = 256;
const MAX_FRAMES = 1_000_000;
const QUEUE_SIZE = BATCH * 4;
/** Guest-memory layout: the two rings, then frame buffers. */
const RX_RING = 0x10000;
const TX_RING = 0x100000;
const BUFFERS = 0x200000;
const BUFFER_SIZE = VNET_HEADER_SIZE + 1518;
const MEMORY_SIZE = BUFFERS + BATCH * BUFFER_SIZE;

interface Figures {
  frames: number;
  seconds: number;
}

function rate(f: Figures, size: number): string {
  const fps = f.frames / f.seconds;
  return `${fixed(fps / 1000, 1)} kframes/s, ${fixed((fps * size * 8) / 1e9, 3)} Gbit/s`;
}

function rawTx(fd: number, frame: Uint8Array, count: number): Figures {
  const packet = new Uint8Array(VNET_HEADER_SIZE + frame.length);
  packet.set(frame, VNET_HEADER_SIZE);
  const start = performance.now();
  let sent = 0;
  for (let i = 0; i < count; i++) {
    if (write(fd, packet) > 0) sent++;
  }
  return { frames: sent, seconds: (performance.now() - start) / 1000 };
}

function deviceTx(
  net: VirtioNet,
  tx: SplitQueueDriver,
  memory: GuestMemory,
  frame: Uint8Array,
  count: number,
): Figures {
  // One zeroed header and the frame, in guest memory, sent over and over.
  memory.fill(BUFFERS, VNET_HEADER_SIZE);
  memory.write(BUFFERS + VNET_HEADER_SIZE, frame);
  const buffers = [
    { address: BUFFERS, length: VNET_HEADER_SIZE },
    { address: BUFFERS + VNET_HEADER_SIZE, length: frame.length },
  ];
  const before = net.counters.txFrames;
  const start = performance.now();
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) tx.add(buffers);
    tx.publish();
    net.notify(1);
    tx.takeUsed();
  }
  return { frames: net.counters.txFrames - before, seconds: (performance.now() - start) / 1000 };
}

function rawRx(fd: number, host: PacketSocket, frame: Uint8Array, count: number): Figures {
  const buffer = new Uint8Array(VNET_HEADER_SIZE + 65536);
  let received = 0;
  let seconds = 0;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) host.send(frame);
    const start = performance.now();
    while (read(fd, buffer) > 0) received++;
    seconds += (performance.now() - start) / 1000;
  }
  return { frames: received, seconds };
}

function deviceRx(
  net: VirtioNet,
  rx: SplitQueueDriver,
  host: PacketSocket,
  frame: Uint8Array,
  count: number,
): Figures {
  const [source] = net.eventSources();
  const buffers = Array.from({ length: BATCH }, (_, i) => [
    { address: BUFFERS + i * BUFFER_SIZE, length: BUFFER_SIZE, writable: true },
  ]);
  const before = net.counters.rxFrames;
  let seconds = 0;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) host.send(frame);
    const start = performance.now();
    for (let i = 0; i < n; i++) rx.add(buffers[i]);
    rx.publish();
    net.notify(0);
    source.onReadable();
    rx.takeUsed();
    seconds += (performance.now() - start) / 1000;
  }
  return { frames: net.counters.rxFrames - before, seconds };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      frames: { type: "string", default: "100000" },
      size: { type: "string", default: "1500" },
    },
  });
  const count = Number(values.frames);
  const size = Number(values.size);
  if (!Number.isInteger(count) || count < BATCH || count > MAX_FRAMES) {
    throw new CouldNotMeasureError(`--frames must be an integer from ${BATCH} to ${MAX_FRAMES}`);
  }
  if (!Number.isInteger(size) || size < 60 || size > 1514) {
    throw new CouldNotMeasureError("--size must be an Ethernet frame size from 60 to 1514");
  }
  let tap;
  try {
    tap = openQuietTap("nb");
  } catch (error) {
    throw new CouldNotMeasureError(`cannot open a tap: ${(error as Error).message}`);
  }
  const host = new PacketSocket(tap.name);
  const memory = GuestMemory.ofSize(MEMORY_SIZE);
  const rx = new SplitQueueDriver(memory, { base: RX_RING, size: QUEUE_SIZE });
  const tx = new SplitQueueDriver(memory, { base: TX_RING, size: QUEUE_SIZE });
  const features = VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS;
  const net = new VirtioNet({
    tap: { name: tap.name, fd: tap.fd, supportedOffloads: 0, setOffloads() {} },
    mergeableRxBuffers: false,
  });
  net.activate({
    memory,
    features,
    queues: [
      new SplitQueue(memory, rx.config, { features }),
      new SplitQueue(memory, tx.config, { features }),
    ],
    interrupt: { usedBuffer() {}, configChanged() {} },
    fail(reason) {
      throw new CouldNotMeasureError(`the device failed: ${reason}`);
    },
  });
  try {
    const frame = testFrame(size, 1);
    console.log(
      `virtio-net through tap ${tap.name}: ${count} frames of ${size} bytes, median of 3`,
    );
    const results: Array<[string, Figures, Figures]> = [];
    for (
      const [name, raw, device] of [
        [
          "tx",
          () => rawTx(tap.fd, frame, count),
          () => deviceTx(net, tx, memory, frame, count),
        ],
        [
          "rx",
          () => rawRx(tap.fd, host, frame, count),
          () => deviceRx(net, rx, host, frame, count),
        ],
      ] as const
    ) {
      const raws: Figures[] = [];
      const devices: Figures[] = [];
      for (let run = 0; run < 3; run++) {
        drainTap(tap.fd);
        raws.push(raw());
        drainTap(tap.fd);
        devices.push(device());
      }
      const best = (list: Figures[]) =>
        list.sort((a, b) => a.frames / a.seconds - b.frames / b.seconds)[1];
      results.push([name, best(raws), best(devices)]);
    }
    for (const [name, raw, device] of results) {
      const ratio = (device.frames / device.seconds) / (raw.frames / raw.seconds);
      console.log(`${name} raw tap:    ${rate(raw, size)} (${raw.frames} frames)`);
      console.log(`${name} virtio-net: ${rate(device, size)} (${device.frames} frames)`);
      console.log(`${name} ratio virtio-net / raw: ${fixed(ratio)}x`);
    }
    const c = net.counters;
    console.log(`counters: rx dropped ${c.rxDropped}, tx dropped ${c.txDropped}`);
  } finally {
    net.close();
    host.close();
    tap.close();
  }
}

await runBenchmark("bench/net.ts", () => Promise.resolve().then(main));
