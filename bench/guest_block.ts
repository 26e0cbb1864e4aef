/**
 * Guest-driven disk reads: the same guest binary (guests/virtio_blk_stream.c: 64 KiB
 * requests, one in flight, polling) reads the same image file on Denovisor's virtio-blk
 * and on QEMU's virtio-blk-pci, in the same run. Boot costs differ a lot (QEMU runs
 * SeaBIOS), so each VMM reads N and 4N MiB and the difference in wall time is what counts.
 * Both use the host page cache (`cache=writeback` for QEMU, buffered I/O for Denovisor),
 * after a warm-up read of the whole image.
 *
 * Usage: deno run -A bench/guest_block.ts [--mib N] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  CouldNotMeasureError,
  denovisorArgs,
  ensureGuest,
  fixed,
  median,
  qemuGuestArgs,
  runBenchmark,
  timedOutput,
  writeRandomImage,
} from "./_support.ts";

const IMAGE = "/var/tmp/denovisor-bench-guest-block.img";

async function timeRun(command: string, args: string[]): Promise<number> {
  const { seconds, code, stdout } = await timedOutput(command, args);
  // QEMU's isa-debug-exit reports (0 << 1) | 1.
  if (!/virtio_blk_stream: read \d+ MiB/.test(stdout) || (code !== 0 && code !== 1)) {
    throw new CouldNotMeasureError(`${command} failed (status ${code}):\n${stdout.slice(-400)}`);
  }
  return seconds;
}

const denovisor = (kernel: string, mib: number) =>
  timeRun(
    Deno.execPath(),
    denovisorArgs("run", "--kernel", kernel, "--disk", IMAGE, "--cmdline", `mib=${mib}`),
  );

const qemu = (kernel: string, mib: number) =>
  timeRun("qemu-system-x86_64", [
    ...qemuGuestArgs(kernel, { append: `mib=${mib}` }),
    ...["-device", "virtio-blk-pci,drive=d0,disable-legacy=on"],
    ...["-drive", `if=none,id=d0,file=${IMAGE},format=raw,cache=writeback,aio=threads`],
  ]);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mib: { type: "string", default: "16" }, rounds: { type: "string", default: "3" } },
  });
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(mib) || mib < 1 || mib > 64) {
    throw new CouldNotMeasureError("--mib must be 1 to 64");
  }
  const kernel = await ensureGuest("virtio_blk_stream");
  await writeRandomImage(IMAGE, (4 * mib + 1) * 1024 * 1024);
  try {
    await Deno.readFile(IMAGE); // warm the page cache for both
    const perMiB: Record<"denovisor" | "qemu", number[]> = { denovisor: [], qemu: [] };
    for (let round = 0; round < rounds; round++) {
      for (const [name, run] of [["denovisor", denovisor], ["qemu", qemu]] as const) {
        const small = await run(kernel, mib);
        const large = await run(kernel, 4 * mib);
        perMiB[name].push((large - small) / (3 * mib));
      }
    }
    const rate = (name: "denovisor" | "qemu") => 1 / median(perMiB[name]);
    const ratio = rate("denovisor") / rate("qemu");
    console.log(
      `guest-driven sequential read, 64 KiB requests, ${mib} vs ${4 * mib} MiB, ` +
        `median of ${rounds} rounds (page cache warm)`,
    );
    console.log(`  Denovisor virtio-blk  ${fixed(rate("denovisor"), 1)} MiB/s`);
    console.log(`  QEMU virtio-blk-pci   ${fixed(rate("qemu"), 1)} MiB/s`);
    console.log(`  ratio Denovisor/QEMU: ${fixed(ratio)}x (higher is better)`);
  } finally {
    await Deno.remove(IMAGE).catch(() => {});
  }
}

await runBenchmark("bench/guest_block.ts", main);
