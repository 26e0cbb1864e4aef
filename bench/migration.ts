/**
 * Live migration on loopback, Denovisor against QEMU, the same guest on the same host:
 * the `migrate` guest (guests/migrate.c) in a 256 MiB VM, idle (a 4 MiB pattern) and
 * dirtying memory at a fixed rate (a 128 MiB pattern, `dirty=32`: 32 pages per 10 ms tick,
 * 12.5 MiB/s). For each: total migration time, downtime as the VMM measures it (Denovisor:
 * from pause to the destination's ACK; QEMU: `info migrate`'s downtime) and as the guest
 * saw it (the longest TSC gap beyond one tick in the first half second on the
 * destination), and bytes sent. The baseline is QEMU 7.2's pre-copy over
 * `-incoming tcp:` with `downtime-limit` set to the same 100 ms and no bandwidth limit on
 * either side. Denovisor runs as two daemons with `--migration-insecure` on 127.0.0.1
 * (its relay through each daemon included; no TLS, as QEMU's tcp: has none). The goal:
 * downtime under 100 ms and a total time no worse than QEMU's.
 *
 * Denovisor's total includes starting the destination's VMM (QEMU's destination is started
 * with `-incoming` before its clock starts), so it is measured twice: with the daemons'
 * defaults, and with `--vmm-pool 1`, where the receiving VMM is one started ahead (as
 * QEMU's). Denovisor's downtime is also split into its steps (MigrationResult.switchOver).
 *
 * Usage: deno run -A bench/migration.ts [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import type { MigrationResult } from "../manager/api_types.ts";
import { MigrationDaemon } from "../tests/migration_support.ts";
import {
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  requireKvm,
  runBenchmark,
  runQuiet,
} from "./_support.ts";

const MEMORY_MIB = 256;
const MAX_DOWNTIME_MS = 100;
const WORKLOADS = [
  { name: "idle", cmdline: "mib=4" },
  { name: "dirtying 12.5 MiB/s", cmdline: "mib=128 dirty=32" },
] as const;

/** One migration's figures. */
interface Figures {
  totalMs: number;
  downtimeMs: number;
  guestGapMs: number;
  bytes: number;
  /** Denovisor: where the downtime went. */
  switchOver?: MigrationResult["switchOver"];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The highest "tick N" in `text`, or -1. */
function lastTick(text: string): number {
  return Math.max(-1, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
}

/** The guest-observed gap: the longest in the first two beats the destination printed. */
function guestGapMs(text: string): number {
  const gaps = [...text.matchAll(/tick \d+ gap_us=(\d+)/g)].slice(0, 2).map((m) => Number(m[1]));
  if (gaps.length === 0) throw new CouldNotMeasureError("the guest printed no tick there");
  return Math.max(...gaps) / 1000;
}

async function until<T>(what: string, test: () => Promise<T | undefined>, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await test();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new CouldNotMeasureError(`${what}: not within ${ms / 1000} s`);
}

/** Denovisor: two daemons on loopback, the guest moved A -> B. */
async function denovisorRun(
  kernel: string,
  cmdline: string,
  dir: string,
  pooled: boolean,
): Promise<Figures> {
  const daemons: MigrationDaemon[] = [];
  try {
    const listen = ["--migration-listen", "127.0.0.1:{port}", "--migration-insecure"];
    if (pooled) listen.push("--vmm-pool", "1");
    for (const host of ["a", "b"]) {
      await Deno.mkdir(join(dir, host));
      daemons.push(await MigrationDaemon.start(join(dir, host), listen));
    }
    const [a, b] = daemons;
    await a.client.post("/v1/domains?start=1", {
      name: "bench",
      boot: { kernel, cmdline },
      memory: MEMORY_MIB,
    });
    await until(
      "the guest's third beat",
      async () => lastTick(await a.log("bench")) >= 3 || undefined,
    );
    const result = await a.client.post<MigrationResult>("/v1/domains/bench/migrate", {
      dest: `127.0.0.1:${b.port}`,
      maxDowntimeMs: MAX_DOWNTIME_MS,
      timeoutS: 300,
    });
    const text = await until("two beats on the destination", async () => {
      const log = await b.log("bench");
      return [...log.matchAll(/tick \d+ gap_us/g)].length >= 2 ? log : undefined;
    });
    if (pooled && !text.includes("taken from the pool")) {
      throw new CouldNotMeasureError("the receiving VMM was not taken from the pool");
    }
    return {
      totalMs: result.totalMs,
      downtimeMs: result.downtimeMs,
      guestGapMs: guestGapMs(text),
      bytes: result.bytesSent,
      switchOver: result.switchOver,
    };
  } finally {
    for (const daemon of daemons) await daemon.stop();
  }
}

/** A QEMU process with a human monitor on a unix socket. */
class Qemu {
  readonly #child: Deno.ChildProcess;
  readonly serial: string;
  readonly #monitor: string;
  #conn?: Deno.UnixConn;

  constructor(kernel: string, cmdline: string, dir: string, name: string, incoming?: number) {
    this.serial = join(dir, `${name}.serial`);
    this.#monitor = join(dir, `${name}.monitor`);
    this.#child = new Deno.Command("qemu-system-x86_64", {
      args: [
        ...["-accel", "kvm", "-m", String(MEMORY_MIB), "-smp", "1", "-display", "none"],
        ...["-kernel", kernel, "-append", cmdline, "-serial", `file:${this.serial}`],
        ...["-monitor", `unix:${this.#monitor},server,nowait`, "-no-reboot"],
        ...(incoming === undefined ? [] : ["-incoming", `tcp:127.0.0.1:${incoming}`]),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  async serialText(): Promise<string> {
    return await Deno.readTextFile(this.serial).catch(() => "");
  }

  /** Sends an HMP command; resolves with its answer (up to the next prompt). */
  async command(line: string): Promise<string> {
    if (!this.#conn) {
      this.#conn = await until(
        "the QEMU monitor",
        () => Deno.connect({ transport: "unix", path: this.#monitor }).catch(() => undefined),
        30_000,
      );
      await this.#readPrompt();
    }
    await this.#conn.write(new TextEncoder().encode(`${line}\n`));
    return await this.#readPrompt();
  }

  async #readPrompt(): Promise<string> {
    const buffer = new Uint8Array(65536);
    let text = "";
    while (!text.endsWith("(qemu) ")) {
      const n = await this.#conn!.read(buffer);
      if (n === null) throw new CouldNotMeasureError("the QEMU monitor closed");
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    // HMP echoes the command with terminal escapes: drop them.
    return text.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g"), "");
  }

  async stop(): Promise<void> {
    this.#conn?.close();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
    await this.#child.status;
  }
}

/** QEMU: a source and an `-incoming` destination on loopback. */
async function qemuRun(kernel: string, cmdline: string, dir: string): Promise<Figures> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const source = new Qemu(kernel, cmdline, dir, "source");
  const destination = new Qemu(kernel, cmdline, dir, "destination", port);
  try {
    // SeaBIOS runs on the CPL0 emulator here: the guest's first beats take a while.
    await until(
      "the QEMU guest's third beat",
      async () => lastTick(await source.serialText()) >= 3 || undefined,
      180_000,
    );
    await destination.command("info status"); // its monitor is up: it listens
    await source.command(`migrate_set_parameter downtime-limit ${MAX_DOWNTIME_MS}`);
    await source.command("migrate_set_parameter max-bandwidth 100G");
    await source.command(`migrate -d tcp:127.0.0.1:${port}`);
    const info = await until("QEMU's migration to complete", async () => {
      const answer = await source.command("info migrate");
      if (/Migration status: (failed|cancelled)/.test(answer)) {
        throw new CouldNotMeasureError(`QEMU's migration failed:\n${answer}`);
      }
      return /Migration status: completed/.test(answer) ? answer : undefined;
    }, 300_000);
    const number = (pattern: RegExp) => {
      const match = pattern.exec(info);
      if (!match) throw new CouldNotMeasureError(`no ${pattern} in QEMU's info migrate:\n${info}`);
      return Number(match[1]);
    };
    const text = await until("two beats on the QEMU destination", async () => {
      const log = await destination.serialText();
      const after = log.slice(Math.max(0, log.lastIndexOf("migrate guest up")));
      return [...after.matchAll(/tick \d+ gap_us/g)].length >= 2 ? after : undefined;
    });
    return {
      totalMs: number(/total time: (\d+) ms/),
      downtimeMs: number(/downtime: (\d+) ms/),
      guestGapMs: guestGapMs(text),
      bytes: number(/transferred ram: (\d+) kbytes/) * 1024,
    };
  } finally {
    await source.stop();
    await destination.stop();
  }
}

function summary(figures: Figures[]): Figures {
  const steps = figures.flatMap((f) => f.switchOver ? [f.switchOver] : []);
  const step = (key: keyof NonNullable<Figures["switchOver"]>) => median(steps.map((s) => s[key]));
  return {
    totalMs: median(figures.map((f) => f.totalMs)),
    downtimeMs: median(figures.map((f) => f.downtimeMs)),
    guestGapMs: median(figures.map((f) => f.guestGapMs)),
    bytes: median(figures.map((f) => f.bytes)),
    ...(steps.length === 0 ? {} : {
      switchOver: {
        pause: step("pause"),
        lastPages: step("lastPages"),
        state: step("state"),
        disks: step("disks"),
        destination: step("destination"),
      },
    }),
  };
}

function line(who: string, f: Figures): string {
  const s = f.switchOver;
  return `    ${who.padEnd(16)} total ${fixed(f.totalMs, 0).padStart(6)} ms, downtime ` +
    `${fixed(f.downtimeMs, 0).padStart(5)} ms (VMM), ${fixed(f.guestGapMs, 0).padStart(5)} ms ` +
    `(guest), ${fixed(f.bytes / 1048576, 1).padStart(6)} MiB sent` +
    (s
      ? `\n${"".padEnd(22)}downtime medians: pause ${fixed(s.pause, 0)}, last pages ` +
        `${fixed(s.lastPages, 0)}, state ${fixed(s.state, 0)}, disks ${fixed(s.disks, 0)}, ` +
        `destination restore+resume+ACK ${fixed(s.destination, 0)} ms`
      : "");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { runs: { type: "string" } } });
  const runs = Number(values.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number >= 1");
  await requireKvm();
  const qemu = await runQuiet("qemu-system-x86_64", ["--version"]);
  if (qemu.code !== 0) throw new CouldNotMeasureError("qemu-system-x86_64 --version failed");
  const kernel = await ensureGuest("migrate");
  // Short: the daemons' and VMMs' unix sockets live under it (sun_path is 108 bytes).
  const dir = await Deno.makeTempDir({ prefix: "dvbm" });
  console.log(
    `live migration on loopback, ${MEMORY_MIB} MiB guest, downtime limit ${MAX_DOWNTIME_MS} ms ` +
      `(median of ${runs}; goal: downtime < 100 ms, total time <= QEMU's):`,
  );
  try {
    for (const workload of WORKLOADS) {
      const ours: Figures[] = [];
      const pooled: Figures[] = [];
      const theirs: Figures[] = [];
      // Interleaved, so that a slow moment of the host hits both sides alike.
      for (let run = 0; run < runs; run++) {
        const runDir = join(dir, `${WORKLOADS.indexOf(workload)}${run}`);
        await Deno.mkdir(runDir);
        await Deno.mkdir(join(runDir, "pooled"));
        ours.push(await denovisorRun(kernel, workload.cmdline, runDir, false));
        pooled.push(await denovisorRun(kernel, workload.cmdline, join(runDir, "pooled"), true));
        theirs.push(await qemuRun(kernel, workload.cmdline, runDir));
      }
      const d = summary(ours);
      const p = summary(pooled);
      const q = summary(theirs);
      console.log(`  ${workload.name} (${workload.cmdline}):`);
      console.log(line("Denovisor", d));
      console.log(line("Denovisor pooled", p));
      console.log(line("QEMU", q));
      for (const [who, f] of [["Denovisor", d], ["Denovisor pooled", p]] as const) {
        console.log(
          `    ratio ${who}/QEMU: total ${fixed(f.totalMs / q.totalMs)}x, downtime ` +
            `${fixed(f.downtimeMs / Math.max(q.downtimeMs, 1))}x; downtime goal ` +
            `${f.downtimeMs < 100 ? "met" : "not met"}, total-time goal ` +
            `${f.totalMs <= q.totalMs ? "met" : "not met"}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runBenchmark("migration", main);
