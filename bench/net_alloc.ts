/**
 * JavaScript heap bytes the virtio-net device allocates per frame: its tx path writing to
 * /dev/null and its rx path reading a tap (root), measured as heapUsed growth across the
 * device's work with a young generation large enough that no GC runs (a round where one
 * ran is skipped; the median batch counts). Deterministic where bench/net.ts's timings are not on a busy host.
 *
 * Usage: deno run -A --v8-flags=--min-semi-space-size=128,--max-semi-space-size=128 bench/net_alloc.ts
 *
 * @module
 */
import { memoryUsage } from "node:process";
import { tryOpen } from "../ffi/fs.ts";
import { GuestMemory } from "../core/guest_memory.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { NET_F } from "../devices/virtio/net_header.ts";
import { VIRTIO_F } from "../devices/virtio/virtio_device.ts";
import { SplitQueue } from "../devices/virtio/queue.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { openQuietTap, PacketSocket, testFrame } from "../devices/net/testing/test_tap.ts";
const BUFFERS = 0x200000, BS = 1530;
const memory = GuestMemory.ofSize(BUFFERS + 256 * BS);
const features = VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS;
function mk(fd: number) {
  const rx = new SplitQueueDriver(memory, { base: 0x10000, size: 1024 });
  const tx = new SplitQueueDriver(memory, { base: 0x100000, size: 1024 });
  const net = new VirtioNet({
    tap: { name: "x", fd, supportedOffloads: 0, setOffloads() {} },
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
    fail(r) {
      throw new Error(r);
    },
  });
  return { net, rx, tx };
}
/** Median heap growth per frame over `batches` batches of 256; batches where a GC ran are skipped. */
function perFrame(batches: number, driver: () => void, device: () => void): number {
  const grown: number[] = [];
  for (let b = 0; b < batches; b++) {
    driver();
    const before = memoryUsage().heapUsed;
    device();
    const after = memoryUsage().heapUsed;
    if (after >= before) grown.push(after - before);
  }
  grown.sort((a, b) => a - b);
  return grown.length === 0 ? NaN : grown[Math.floor(grown.length / 2)] / 256;
}
{
  const { net, tx } = mk(tryOpen("/dev/null", 1));
  const bufs = [{ address: BUFFERS, length: 12 }, { address: BUFFERS + 12, length: 1500 }];
  const drv = () => {
    tx.takeUsed();
    for (let i = 0; i < 256; i++) tx.add(bufs);
    tx.publish();
  };
  perFrame(200, drv, () => net.notify(1)); // warm up
  const r = [1, 2, 3].map(() => perFrame(40, drv, () => net.notify(1)));
  console.log("tx bytes allocated per frame:", r.map((x) => x.toFixed(1)).join(" "));
}
{
  const tap = openQuietTap("na");
  const host = new PacketSocket(tap.name);
  const { net, rx } = mk(tap.fd);
  const frame = testFrame(1500, 1);
  const bufs = Array.from(
    { length: 256 },
    (_, i) => [{ address: BUFFERS + i * BS, length: BS, writable: true }],
  );
  const drv = () => {
    rx.takeUsed();
    for (let i = 0; i < 256; i++) host.send(frame);
    for (let i = 0; i < 256; i++) rx.add(bufs[i]);
    rx.publish();
  };
  perFrame(100, drv, () => net.notify(0));
  const r = [1, 2, 3].map(() => perFrame(40, drv, () => net.notify(0)));
  console.log(
    "rx bytes allocated per frame:",
    r.map((x) => x.toFixed(1)).join(" "),
    "frames",
    net.counters.rxFrames,
    "dropped",
    net.counters.rxDropped,
  );
  net.close();
  host.close();
  tap.close();
}
Deno.exit(0);
