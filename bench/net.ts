/**
 * Net: frames per second and throughput of virtio-net through a tap, against a raw tap
 * read/write loop on the same tap in the same run. The host side is a raw packet socket on
 * the tap; no guest CPU is involved: the device's queues are filled from the host side.
 *
 * - tx: N frames written to the tap by the device (notify on the tx queue, writev from the
 *   chains' buffers) vs `write(tap, header + frame)` in a loop.
 * - rx: frames injected through the packet socket in batches of 256, then drained by the
 *   device (readv into the rx chains' buffers) vs `read(tap)` in a loop; only the drain is
 *   timed.
 * - `--mergeable`: rx as a Linux guest negotiates it (MRG_RXBUF with GUEST_CSUM and
 *   GUEST_TSO4): every read offers enough 1530-byte chains for a 64 KiB frame.
 * - `--tso`: tx of 64 KiB TCP/IPv4 GSO frames (CSUM and HOST_TSO4 negotiated; the kernel
 *   takes them whole). rx is not measured with TSO: the packet socket cannot inject GSO
 *   frames.
 *
 * A second baseline does the raw loop's calls on the device's own buffers (`writev` of the
 * header and frame from guest memory; `readv` into the same guest receive buffers and
 * overflow buffer): the kernel's cost depends on where the bytes are (a copy into a
 * receive buffer varies with its address by up to half a microsecond here), which the
 * device does not choose, so the ratio against it is the device's own overhead.
 *
 * The queues are real split rings in guest memory, filled and drained by the driver-side
 * harness (devices/virtio/testing/driver_harness.ts). The headline times the device's work
 * only (notify/readable to used ring, what the VMM's thread does), as the raw loop times
 * only its calls; the harness's own work (a guest driver's, on its vCPU) is printed as a
 * second figure. Each round runs raw then device; the ratio is per round (the host is
 * shared, so rounds are paired), printed as median and range, in wall time and in process
 * CPU time (user + system, less disturbed by other jobs than wall time).
 *
 * Usage: deno run -A bench/net.ts [--frames N] [--size BYTES] [--tso] [--mergeable] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpuUsage } from "node:process";
import { read, write } from "../ffi/fs.ts";
import { IovecArray, readv, writev } from "../ffi/iovec.ts";
import { GuestMemory } from "../core/guest_memory.ts";
import { type Tap, TUN_F, VNET_HEADER_SIZE } from "../devices/net/tap.ts";
import {
  drainTap,
  openQuietTap,
  PacketSocket,
  testFrame,
} from "../devices/net/testing/test_tap.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { NET_F, NET_HDR } from "../devices/virtio/net_header.ts";
import { VIRTIO_F } from "../devices/virtio/virtio_device.ts";
import { SplitQueue } from "../devices/virtio/queue.ts";
import { SplitQueueDriver } from "../devices/virtio/testing/driver_harness.ts";
import { CouldNotMeasureError, fixed, median, runBenchmark } from "./_support.ts";

const BATCH = 256;
const MAX_FRAMES = 1_000_000;
const QUEUE_SIZE = BATCH * 4;
/** Guest-memory layout: the two rings, then frame buffers. */
const RX_RING = 0x10000;
const TX_RING = 0x100000;
const BUFFERS = 0x200000;
const BUFFER_SIZE = VNET_HEADER_SIZE + 1518;
/** A TSO frame: Ethernet + IPv4 (total length 65480) + TCP, cut by the kernel at 1448. */
const TSO_FRAME = 14 + 65480;
const TSO_MSS = 1448;
const MEMORY_SIZE = BUFFERS + Math.max(BATCH * BUFFER_SIZE, VNET_HEADER_SIZE + TSO_FRAME);

/** Frames moved, in wall seconds (device only, and with the driver harness) and CPU seconds. */
interface Figures {
  frames: number;
  seconds: number;
  withDriverSeconds: number;
  cpuSeconds: number;
}

/** Measures a stretch of work: wall time of `timed` only, and process CPU time of it. */
class Stopwatch {
  seconds = 0;
  cpuSeconds = 0;
  readonly #started = performance.now();

  time(timed: () => void): void {
    const cpu = cpuUsage();
    const start = performance.now();
    timed();
    this.seconds += (performance.now() - start) / 1000;
    const used = cpuUsage(cpu);
    this.cpuSeconds += (used.user + used.system) / 1e6;
  }

  figures(frames: number): Figures {
    const total = (performance.now() - this.#started) / 1000;
    return { frames, seconds: this.seconds, withDriverSeconds: total, cpuSeconds: this.cpuSeconds };
  }
}

function rate(f: Figures, size: number): string {
  const fps = f.frames / f.seconds;
  return `${fixed(fps / 1000, 1).padStart(7)} kframes/s ${fixed((fps * size * 8) / 1e9, 3)} Gbit/s`;
}

/** The virtio-net header of a transmitted frame: zero, or TSO's for `--tso`. */
function txHeader(tso: boolean): Uint8Array {
  const header = new Uint8Array(VNET_HEADER_SIZE);
  if (!tso) return header;
  const view = new DataView(header.buffer);
  view.setUint8(0, NET_HDR.F_NEEDS_CSUM);
  view.setUint8(1, NET_HDR.GSO_TCPV4);
  view.setUint16(2, 14 + 20 + 20, true); // hdr_len
  view.setUint16(4, TSO_MSS, true); // gso_size
  view.setUint16(6, 14 + 20, true); // csum_start: the TCP header
  view.setUint16(8, 16, true); // csum_offset: TCP checksum
  return header;
}

/** A 64 KiB TCP/IPv4 frame to a documentation address (192.0.2.1), valid IP checksum. */
function tsoFrame(): Uint8Array {
  const frame = new Uint8Array(TSO_FRAME);
  const view = new DataView(frame.buffer);
  frame.set([0x02, 0, 0, 0, 0, 0x43, 0x02, 0, 0, 0, 0, 0x42, 0x08, 0x00]);
  frame.set([0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1], 14);
  view.setUint16(16, TSO_FRAME - 14);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += view.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  view.setUint16(24, ~sum & 0xffff);
  view.setUint16(34, 40000); // source port
  view.setUint16(36, 9); // discard
  view.setUint8(46, 5 << 4); // data offset
  view.setUint8(47, 0x18); // PSH ACK
  for (let i = 54; i < frame.length; i++) frame[i] = i & 0xff;
  return frame;
}

function rawTx(fd: number, header: Uint8Array, frame: Uint8Array, count: number): Figures {
  const packet = new Uint8Array(VNET_HEADER_SIZE + frame.length);
  packet.set(header);
  packet.set(frame, VNET_HEADER_SIZE);
  const watch = new Stopwatch();
  let sent = 0;
  watch.time(() => {
    for (let i = 0; i < count; i++) if (write(fd, packet) > 0) sent++;
  });
  return watch.figures(sent);
}

/** The raw loop on the device's buffers: writev of the header and frame in guest memory. */
function rawTxGuest(
  fd: number,
  memory: GuestMemory,
  header: Uint8Array,
  frame: Uint8Array,
  count: number,
): Figures {
  memory.write(BUFFERS, header);
  memory.write(BUFFERS + VNET_HEADER_SIZE, frame);
  const iovecs = new IovecArray();
  iovecs.add(memory.slice(BUFFERS, VNET_HEADER_SIZE));
  iovecs.add(memory.slice(BUFFERS + VNET_HEADER_SIZE, frame.length));
  const watch = new Stopwatch();
  let sent = 0;
  watch.time(() => {
    for (let i = 0; i < count; i++) if (writev(fd, iovecs) > 0) sent++;
  });
  return watch.figures(sent);
}

function deviceTx(
  net: VirtioNet,
  tx: SplitQueueDriver,
  memory: GuestMemory,
  header: Uint8Array,
  frame: Uint8Array,
  count: number,
): Figures {
  // One header and the frame, in guest memory, sent over and over.
  memory.write(BUFFERS, header);
  memory.write(BUFFERS + VNET_HEADER_SIZE, frame);
  const buffers = [
    { address: BUFFERS, length: VNET_HEADER_SIZE },
    { address: BUFFERS + VNET_HEADER_SIZE, length: frame.length },
  ];
  const before = net.counters.txFrames;
  const watch = new Stopwatch();
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) tx.add(buffers);
    tx.publish();
    watch.time(() => net.notify(1));
    tx.takeUsed();
  }
  return watch.figures(net.counters.txFrames - before);
}

function rawRx(fd: number, host: PacketSocket, frame: Uint8Array, count: number): Figures {
  const buffer = new Uint8Array(VNET_HEADER_SIZE + 65536);
  let received = 0;
  const watch = new Stopwatch();
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) host.send(frame);
    watch.time(() => {
      while (read(fd, buffer) > 0) received++;
    });
  }
  const figures = watch.figures(received);
  return { ...figures, withDriverSeconds: figures.seconds };
}

/** The raw loop on the device's buffers: readv into the guest buffers, then the overflow. */
function rawRxGuest(
  fd: number,
  host: PacketSocket,
  lists: IovecArray[],
  frame: Uint8Array,
  count: number,
): Figures {
  let received = 0;
  const watch = new Stopwatch();
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) host.send(frame);
    watch.time(() => {
      for (let i = 0; readv(fd, lists[i % BATCH]) > 0; i++) received++;
    });
  }
  const figures = watch.figures(received);
  return { ...figures, withDriverSeconds: figures.seconds };
}

/** One iovec list per receive buffer of `deviceRx`: the buffer, then a 64 KiB overflow. */
function rxGuestLists(memory: GuestMemory): IovecArray[] {
  const overflow = new Uint8Array(VNET_HEADER_SIZE + 65536 + 18);
  return Array.from({ length: BATCH }, (_, i) => {
    const list = new IovecArray();
    list.add(memory.slice(BUFFERS + i * BUFFER_SIZE, BUFFER_SIZE));
    list.add(overflow);
    return list;
  });
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
  const watch = new Stopwatch();
  let driverSeconds = 0;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    for (let i = 0; i < n; i++) host.send(frame);
    const start = performance.now();
    for (let i = 0; i < n; i++) rx.add(buffers[i]);
    rx.publish();
    watch.time(() => {
      net.notify(0);
      source.onReadable();
    });
    rx.takeUsed();
    driverSeconds += (performance.now() - start) / 1000;
  }
  return { ...watch.figures(net.counters.rxFrames - before), withDriverSeconds: driverSeconds };
}

/** A device on `tap` whose driver accepted `features`, and the harness's two queues. */
function activeDevice(tap: Tap, memory: GuestMemory, features: bigint) {
  const rx = new SplitQueueDriver(memory, { base: RX_RING, size: QUEUE_SIZE });
  const tx = new SplitQueueDriver(memory, { base: TX_RING, size: QUEUE_SIZE });
  const net = new VirtioNet({
    tap: {
      name: tap.name,
      fd: tap.fd,
      supportedOffloads: tap.supportedOffloads,
      setOffloads: (flags) => tap.setOffloads(flags),
    },
    mergeableRxBuffers: (features & NET_F.MRG_RXBUF) !== 0n,
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
  return { net, rx, tx };
}

function report(
  name: string,
  size: number,
  raws: Figures[],
  guestRaws: Figures[],
  devices: Figures[],
): void {
  const fps = (f: Figures) => f.frames / f.seconds;
  const byRate = (list: Figures[]) => [...list].sort((a, b) => fps(a) - fps(b));
  const mid = (list: Figures[]) => byRate(list)[Math.floor(list.length / 2)];
  const ratios = (per: (f: Figures) => number, baseline = raws) =>
    baseline.map((raw, i) => (devices[i].frames / per(devices[i])) / (raw.frames / per(raw)));
  const line = (label: string, values: number[]) =>
    `${name} ratio virtio-net / raw, ${label}: ${fixed(median(values))}x ` +
    `(rounds ${fixed(Math.min(...values))}-${fixed(Math.max(...values))}x)`;
  console.log(`${name} raw tap:    ${rate(mid(raws), size)} (median round)`);
  console.log(
    `${name} raw tap on the device's buffers: ${rate(mid(guestRaws), size)} (median round)`,
  );
  console.log(`${name} virtio-net: ${rate(mid(devices), size)} (median round)`);
  console.log(line("wall (headline)", ratios((f) => f.seconds)));
  console.log(line("CPU time", ratios((f) => f.cpuSeconds)));
  console.log(line("wall, raw loop on the device's buffers", ratios((f) => f.seconds, guestRaws)));
  console.log(
    line("CPU, raw loop on the device's buffers", ratios((f) => f.cpuSeconds, guestRaws)),
  );
  if (name === "tx" || name === "rx") {
    console.log(line("wall with the driver harness", ratios((f) => f.withDriverSeconds)));
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      frames: { type: "string", default: "100000" },
      size: { type: "string", default: "1500" },
      tso: { type: "boolean", default: false },
      mergeable: { type: "boolean", default: false },
      rounds: { type: "string", default: "5" },
    },
  });
  const count = Number(values.frames);
  const rounds = Number(values.rounds);
  const tso = values.tso!;
  const mergeable = values.mergeable!;
  const size = tso ? TSO_FRAME : Number(values.size);
  if (!Number.isInteger(count) || count < BATCH || count > MAX_FRAMES) {
    throw new CouldNotMeasureError(`--frames must be an integer from ${BATCH} to ${MAX_FRAMES}`);
  }
  if (!tso && (!Number.isInteger(size) || size < 60 || size > 1514)) {
    throw new CouldNotMeasureError("--size must be an Ethernet frame size from 60 to 1514");
  }
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    throw new CouldNotMeasureError("--rounds must be an integer from 1 to 50");
  }
  let tap: Tap;
  try {
    tap = openQuietTap("nb");
  } catch (error) {
    throw new CouldNotMeasureError(`cannot open a tap: ${(error as Error).message}`);
  }
  if (tso && (tap.supportedOffloads & TUN_F.TSO4) === 0) {
    tap.close();
    throw new CouldNotMeasureError("this kernel's tap does not take TSO4 frames");
  }
  const host = new PacketSocket(tap.name);
  const memory = GuestMemory.ofSize(MEMORY_SIZE);
  const features = VIRTIO_F.VERSION_1 | NET_F.MAC | NET_F.STATUS |
    (tso ? NET_F.CSUM | NET_F.HOST_TSO4 : 0n) |
    (mergeable ? NET_F.MRG_RXBUF | NET_F.GUEST_CSUM | NET_F.GUEST_TSO4 : 0n);
  const { net, rx, tx } = activeDevice(tap, memory, features);
  try {
    const frame = tso ? tsoFrame() : testFrame(size, 1);
    const header = txHeader(tso);
    console.log(
      `virtio-net through tap ${tap.name}: ${count} frames of ${size} bytes` +
        `${tso ? " (TSO, 1448-byte segments)" : ""}` +
        `${mergeable ? " (mergeable rx buffers, guest TSO: up to 43 chains per read)" : ""}` +
        `, ${rounds} rounds`,
    );
    const lists = rxGuestLists(memory);
    const directions = [
      [
        "tx",
        () => rawTx(tap.fd, header, frame, count),
        () => rawTxGuest(tap.fd, memory, header, frame, count),
        () => deviceTx(net, tx, memory, header, frame, count),
      ],
      ...(tso ? [] : [[
        "rx",
        () => rawRx(tap.fd, host, frame, count),
        () => rawRxGuest(tap.fd, host, lists, frame, count),
        () => deviceRx(net, rx, host, frame, count),
      ]]),
    ] as Array<[string, () => Figures, () => Figures, () => Figures]>;
    for (const [name, raw, guestRaw, device] of directions) {
      const raws: Figures[] = [];
      const guestRaws: Figures[] = [];
      const devices: Figures[] = [];
      for (let round = 0; round < rounds; round++) {
        drainTap(tap.fd);
        raws.push(raw());
        drainTap(tap.fd);
        guestRaws.push(guestRaw());
        drainTap(tap.fd);
        devices.push(device());
      }
      report(name, size, raws, guestRaws, devices);
    }
    const c = net.counters;
    console.log(`counters: rx dropped ${c.rxDropped}, tx dropped ${c.txDropped}; target >= 0.8x`);
    if (c.txDropped > 0 || c.rxDropped > 0) {
      throw new CouldNotMeasureError("the device dropped frames: the figures above are not valid");
    }
  } finally {
    net.close();
    host.close();
    tap.close();
  }
}

await runBenchmark("bench/net.ts", () => Promise.resolve().then(main));
