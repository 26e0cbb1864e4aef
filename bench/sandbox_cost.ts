/**
 * What the VMM sandbox costs on the hot paths: an exit round trip (io_loop.elf, port
 * writes) and virtio-blk streaming (virtio_blk_stream.elf), each run by `denovisor run`
 * with the seccomp filter off (the baseline, measured in the same run) and under the
 * default `strict` filter. The rest of the sandbox (namespaces, the chroot, the
 * unprivileged user, the cgroup) adds nothing per call: the kernel checks those at open,
 * mount or signal time, which the hot paths never do; only the filter runs on every call.
 *
 * Each figure is a difference of two runs (N and 4N units) so that start-up drops out;
 * rounds alternate which mode goes first. Noise on a shared host comes in bursts and only
 * adds time, so the headline is the best round of each mode; the medians follow.
 *
 * Usage: deno run -A bench/sandbox_cost.ts [--count N] [--mib M] [--rounds R]
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
  requireKvm,
  runBenchmark,
  timedOutput,
  writeRandomImage,
} from "./_support.ts";

const IMAGE = "/var/tmp/denovisor-bench-sandbox-cost.img";
type Mode = "off" | "strict";

async function timedRun(mode: Mode, args: string[], expect: RegExp): Promise<number> {
  const { seconds, code, stdout } = await timedOutput(
    Deno.execPath(),
    denovisorArgs("run", "--seccomp", mode, ...args),
    { env: { DENO_NO_UPDATE_CHECK: "1" } },
  );
  if (!expect.test(stdout)) {
    throw new CouldNotMeasureError(
      `run --seccomp ${mode} failed (status ${code}):\n${stdout.slice(-400)}`,
    );
  }
  return seconds;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "20000" },
      mib: { type: "string", default: "8" },
      rounds: { type: "string", default: "3" },
    },
  });
  const count = Number(values.count);
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  await requireKvm();
  const ioLoop = await ensureGuest("io_loop");
  const blk = await ensureGuest("virtio_blk_stream");
  await writeRandomImage(IMAGE, (4 * mib + 1) * 1024 * 1024);
  const exitUs: Record<Mode, number[]> = { off: [], strict: [] };
  const blkSeconds: Record<Mode, number[]> = { off: [], strict: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order: Mode[] = round % 2 === 0 ? ["off", "strict"] : ["strict", "off"];
      for (const mode of order) {
        const exits = (n: number) =>
          timedRun(mode, ["--kernel", ioLoop, "--cmdline", `count=${n}`], /io_loop: done/);
        const small = await exits(count);
        const large = await exits(4 * count);
        exitUs[mode].push((large - small) * 1e6 / (3 * count));
        const stream = (m: number) =>
          timedRun(
            mode,
            ["--kernel", blk, "--disk", IMAGE, "--cmdline", `mib=${m}`],
            /virtio_blk_stream: read \d+ MiB/,
          );
        const one = await stream(mib);
        const four = await stream(4 * mib);
        blkSeconds[mode].push((four - one) / (3 * mib));
      }
    }
  } finally {
    await Deno.remove(IMAGE).catch(() => {});
  }
  const best = (values: number[]) => Math.min(...values);
  const exitOff = best(exitUs.off);
  const exitStrict = best(exitUs.strict);
  const mibOff = 1 / best(blkSeconds.off);
  const mibStrict = 1 / best(blkSeconds.strict);
  console.log(`sandbox cost (${rounds} rounds, best round; baseline: seccomp off, same run)`);
  console.log(
    `  exit round trip   off ${fixed(exitOff, 2)} us   strict ${fixed(exitStrict, 2)} us`,
  );
  console.log(`    ratio strict/off ${fixed(exitStrict / exitOff, 3)} (target <= 1.05)`);
  console.log(
    `  virtio-blk read   off ${fixed(mibOff, 1)} MiB/s   strict ${fixed(mibStrict, 1)} MiB/s`,
  );
  console.log(`    ratio strict/off ${fixed(mibStrict / mibOff, 3)} (target >= 0.95)`);
  const medians = (values: number[]) => fixed(median(values), 2);
  console.log(
    `  medians: exit off ${medians(exitUs.off)} us, strict ${medians(exitUs.strict)} us; ` +
      `blk off ${fixed(1 / median(blkSeconds.off), 1)}, strict ${
        fixed(1 / median(blkSeconds.strict), 1)
      } MiB/s`,
  );
}

await runBenchmark("sandbox_cost", main);
