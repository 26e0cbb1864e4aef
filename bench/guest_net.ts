/**
 * Guest-driven network throughput: the same guest binary (guests/virtio_net_stream.c:
 * up to 64 frames in the ring, polling) on Denovisor's virtio-net and on QEMU's userspace
 * `virtio-net-pci` (`vhost=off`), attached in turn to the same tap, in the same run.
 *
 * - guest to host: the guest sends N frames; the host stack takes them on the tap.
 * - host to guest: a packet socket on the tap sends frames at a steady pace (a burst every
 *   millisecond, more than the guest can take) while the guest counts N of them;
 *   the tap drops what does not fit its queue.
 *
 * Each run is timed from the guest's "start" line (driver ready, buffers posted) to its
 * last line on the serial console, so boot costs (QEMU runs SeaBIOS) are left out.
 *
 * Usage: deno run -A bench/guest_net.ts [--frames N] [--size BYTES] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PacketSocket, testFrame } from "../devices/net/testing/test_tap.ts";
import {
  CouldNotMeasureError,
  denovisorArgs,
  ensureGuest,
  fixed,
  median,
  qemuGuestArgs,
  runBenchmark,
} from "./_support.ts";

const TAP = `gnb${Deno.pid % 100000}`;
/** Frames the host sends to the guest per millisecond. */
const RX_BURST = 32;

type Direction = "tx" | "rx";

/**
 * Runs a VMM and returns the seconds from the guest's "start" line to its `done` line on
 * the serial console (boot and shutdown left out), as the host sees the lines arrive.
 */
async function timeRun(command: string, args: string[], done: RegExp): Promise<number> {
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let out = "";
  let started: number | undefined;
  let finished: number | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    out += decoder.decode(chunk, { stream: true });
    if (started === undefined && out.includes("virtio_net_stream: start")) {
      started = performance.now();
    }
    if (finished === undefined && done.test(out)) finished = performance.now();
  }
  const { code } = await child.status;
  // QEMU's isa-debug-exit reports (0 << 1) | 1.
  if (started === undefined || finished === undefined || (code !== 0 && code !== 1)) {
    throw new CouldNotMeasureError(`${command} failed (status ${code}):\n${out.slice(-400)}`);
  }
  return (finished - started) / 1000;
}

function cmdline(direction: Direction, frames: number, size: number): string {
  return `${direction}=${frames} size=${size}`;
}

const denovisor = (kernel: string, line: string, done: RegExp) =>
  timeRun(
    Deno.execPath(),
    denovisorArgs("run", "--kernel", kernel, "--nic", `tap=${TAP}`, "--cmdline", line),
    done,
  );

const qemu = (kernel: string, line: string, done: RegExp) =>
  timeRun("qemu-system-x86_64", [
    ...qemuGuestArgs(kernel, { append: line }),
    ...["-netdev", `tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=off`],
    ...["-device", "virtio-net-pci,netdev=n0,disable-legacy=on"],
  ], done);

async function ip(...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("ip", { args, stderr: "piped" }).output();
  if (code !== 0) {
    throw new CouldNotMeasureError(`ip ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
}

/** Sends test frames to the guest, a burst every millisecond, until stopped. */
function startSender(size: number): () => void {
  const host = new PacketSocket(TAP);
  const frame = testFrame(size, 1);
  const timer = setInterval(() => {
    for (let i = 0; i < RX_BURST; i++) {
      try {
        host.send(frame);
      } catch {
        break; // the socket's queue is full: the next tick tries again
      }
    }
  }, 1);
  return () => {
    clearInterval(timer);
    host.close();
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      frames: { type: "string", default: "2000" },
      size: { type: "string", default: "1500" },
      rounds: { type: "string", default: "2" },
    },
  });
  const frames = Number(values.frames);
  const size = Number(values.size);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(frames) || frames < 100 || frames > 100_000) {
    throw new CouldNotMeasureError("--frames must be 100 to 100000");
  }
  if (!Number.isInteger(size) || size < 60 || size > 1514) {
    throw new CouldNotMeasureError("--size must be an Ethernet frame size from 60 to 1514");
  }
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) {
    throw new CouldNotMeasureError("--rounds must be 1 to 10");
  }
  const kernel = await ensureGuest("virtio_net_stream");
  await ip("tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr");
  try {
    await ip("link", "set", TAP, "up");
    await Deno.writeTextFile(`/proc/sys/net/ipv6/conf/${TAP}/disable_ipv6`, "1").catch(() => {});
    console.log(
      `guest-driven virtio-net on tap ${TAP}: ${frames} frames of ${size} ` +
        `bytes, median of ${rounds} rounds`,
    );
    for (const direction of ["tx", "rx"] as const) {
      const done = direction === "tx"
        ? /virtio_net_stream: sent \d+ frames/
        : /virtio_net_stream: received \d+ frames/;
      const perFrame: Record<"denovisor" | "qemu", number[]> = { denovisor: [], qemu: [] };
      for (let round = 0; round < rounds; round++) {
        for (const [name, run] of [["denovisor", denovisor], ["qemu", qemu]] as const) {
          const stop = direction === "rx" ? startSender(size) : () => {};
          try {
            const seconds = await run(kernel, cmdline(direction, frames, size), done);
            perFrame[name].push(seconds / frames);
          } finally {
            stop();
          }
        }
      }
      const rate = (name: "denovisor" | "qemu") => 1 / median(perFrame[name]);
      const label = direction === "tx" ? "guest to host" : "host to guest";
      const line = (name: "denovisor" | "qemu", what: string) =>
        `  ${what.padEnd(28)} ${fixed(rate(name) / 1000, 2)} kframes/s ` +
        `${fixed((rate(name) * size * 8) / 1e6, 1)} Mbit/s`;
      console.log(`${label}:`);
      console.log(line("denovisor", "Denovisor virtio-net"));
      console.log(line("qemu", "QEMU virtio-net-pci, no vhost"));
      console.log(`  ratio Denovisor/QEMU: ${fixed(rate("denovisor") / rate("qemu"))}x`);
    }
  } finally {
    await ip("tuntap", "del", "dev", TAP, "mode", "tap").catch(() => {});
  }
}

await runBenchmark("bench/guest_net.ts", main);
