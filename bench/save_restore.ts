/**
 * Save time and file sizes, and restore from process start to a guest that answers, side
 * by side with QEMU (the baseline, measured in the same run on the same guest).
 *
 * The guest is guests/domain.c with `fill=N`: N MiB of pages in use (a pattern word at
 * the start of each page from 16 MiB up, all read back at every beat), for a 256 MiB and
 * a 2 GiB guest with little (8 MiB) and much RAM in use.
 *
 * - **Denovisor save**: in this process, the machine built by vmm/builder.ts (as
 *   `denovisor run` builds it) is paused and `saveMachine` writes the state file and the
 *   sparse memory file, each fsynced (what `denovisor save` and `run --save-on-signal` do).
 * - **QEMU save**: `stop`, then `migrate "exec:cat > FILE"` over QMP until query-migrate
 *   says completed (virsh save does the same; QEMU does not fsync the file).
 * - **Restore**: from spawning the process to the guest echoing a line typed on its
 *   serial port: `denovisor run --restore FILE` (from source: module loading included),
 *   and `qemu-system-x86_64 -incoming "exec:cat FILE"` then `cont` over QMP (the saved
 *   guest was stopped, so QEMU waits paused). Median of `--runs` (default 3).
 *
 * VMM-ready-to-vCPUs-running (the issue's <= 10 ms target) is bench/restore.ts.
 *
 * Usage: deno run -A bench/save_restore.ts [--runs N] [--sizes 256,2048] [--little]
 * (`--little`: only the guests with 8 MiB in use, a quick run)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { Kvm } from "../core/kvm.ts";
import type { ConsoleOutput } from "../devices/console/console.ts";
import { build, loadBootImage } from "../vmm/builder.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import { Qmp } from "./_qmp.ts";
import {
  CouldNotMeasureError,
  ensureGuest,
  fixed,
  median,
  REPO_ROOT,
  requireKvm,
  runBenchmark,
  runQuiet,
} from "./_support.ts";

const MIB = 1024 * 1024;
const FILL_WAIT_MS = 300_000;
const ANSWER_WAIT_MS = 120_000;

class Output implements ConsoleOutput {
  text = "";
  write(bytes: Uint8Array): void {
    this.text += new TextDecoder().decode(bytes);
  }
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new CouldNotMeasureError(`${what} did not happen`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Apparent and allocated bytes of a file. */
async function sizes(path: string): Promise<{ apparent: number; allocated: number }> {
  const info = await Deno.stat(path);
  return { apparent: info.size, allocated: (info.blocks ?? 0) * 512 };
}

/** Saves a running domain.c guest in this process; ms of the save and the files' sizes. */
async function denovisorSave(kvm: Kvm, config: VmmMachineConfig, stateFile: string) {
  const output = new Output();
  const machine = build(config, { kvm, console: output, boot: await loadBootImage(config.boot) });
  try {
    machine.start();
    await until(() => /fill ok/.test(output.text), FILL_WAIT_MS, "the guest's first beat");
    const started = performance.now();
    await machine.pause();
    await saveMachine(machine, config, kvm, { stateFile });
    const ms = performance.now() - started;
    const state = await sizes(stateFile);
    const memory = await sizes(`${stateFile}.mem`);
    return { ms, onDisk: state.allocated + memory.allocated, apparent: memory.apparent };
  } finally {
    machine.stop("benchmark");
    await machine.close();
  }
}

/** A spawned VMM whose serial port is its standard input and output. */
class SerialProcess {
  readonly child: Deno.ChildProcess;
  text = "";
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;

  constructor(command: string, args: string[]) {
    const child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.child = child;
    this.#writer = child.stdin.getWriter();
    this.#reading = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
      }
    })();
  }

  async type(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Types `ping` until the guest echoes it. */
  async untilAnswer(): Promise<void> {
    const deadline = performance.now() + ANSWER_WAIT_MS;
    while (!this.text.includes("echo: ping")) {
      if (performance.now() > deadline) {
        throw new CouldNotMeasureError(`no answer from the restored guest:\n${this.text}`);
      }
      await this.type("ping");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Gone.
    }
    await this.#writer.close().catch(() => {});
    await this.child.status;
    await this.#reading.catch(() => {});
  }
}

function qemuArgs(sizeMiB: number, kernel: string, cmdline: string, qmp: string): string[] {
  return [
    "-accel",
    "kvm",
    "-display",
    "none",
    "-nodefaults",
    "-no-reboot",
    "-serial",
    "stdio",
    "-qmp",
    `unix:${qmp},server=on,wait=off`,
    "-m",
    String(sizeMiB),
    "-kernel",
    kernel,
    "-append",
    cmdline,
  ];
}

async function qemuSave(sizeMiB: number, kernel: string, cmdline: string, dir: string) {
  const qmpPath = join(dir, "qmp.sock");
  const file = join(dir, "qemu.state");
  const qemu = new SerialProcess("qemu-system-x86_64", qemuArgs(sizeMiB, kernel, cmdline, qmpPath));
  let qmp: Qmp | undefined;
  try {
    qmp = await Qmp.connect(qmpPath);
    await until(() => /fill ok/.test(qemu.text), FILL_WAIT_MS, "the QEMU guest's first beat");
    const started = performance.now();
    await qmp.execute("stop");
    await qmp.execute("migrate", { uri: `exec:cat > ${file}` });
    for (;;) {
      const status = (await qmp.execute("query-migrate") as { status?: string }).status;
      if (status === "completed") break;
      if (status === "failed" || status === "cancelled") {
        throw new CouldNotMeasureError(`QEMU's migration to a file ${status}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const ms = performance.now() - started;
    return { ms, file, onDisk: (await sizes(file)).allocated };
  } finally {
    qmp?.close();
    await qemu.close();
    await Deno.remove(qmpPath).catch(() => {});
  }
}

/** Spawn to echo: `denovisor run --restore`. */
async function denovisorRestore(stateFile: string): Promise<number> {
  const started = performance.now();
  const vmm = new SerialProcess(Deno.execPath(), [
    "run",
    "-A",
    join(REPO_ROOT, "main.ts"),
    "run",
    "--restore",
    stateFile,
  ]);
  try {
    await vmm.untilAnswer();
    return performance.now() - started;
  } finally {
    await vmm.close();
  }
}

/** Spawn to echo: QEMU with -incoming from the file, then `cont`. */
async function qemuRestore(sizeMiB: number, kernel: string, cmdline: string, file: string) {
  const qmpPath = `${file}.qmp`;
  const started = performance.now();
  const qemu = new SerialProcess("qemu-system-x86_64", [
    ...qemuArgs(sizeMiB, kernel, cmdline, qmpPath),
    "-incoming",
    `exec:cat ${file}`,
  ]);
  let qmp: Qmp | undefined;
  try {
    qmp = await Qmp.connect(qmpPath);
    for (;;) {
      const status = (await qmp.execute("query-status") as { status?: string }).status;
      if (status === "paused" || status === "postmigrate") break;
      if (status === "running") break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await qmp.execute("cont");
    await qemu.untilAnswer();
    return performance.now() - started;
  } finally {
    qmp?.close();
    await qemu.close();
    await Deno.remove(qmpPath).catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string" }, sizes: { type: "string" }, little: { type: "boolean" } },
  });
  const runs = Number(values.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number >= 1");
  const sizeList = (values.sizes ?? "256,2048").split(",").map(Number);
  await requireKvm();
  if ((await runQuiet("qemu-system-x86_64", ["--version"])).code !== 0) {
    throw new CouldNotMeasureError("qemu-system-x86_64 --version failed");
  }
  const kernel = await ensureGuest("domain");
  using kvm = Kvm.open();
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "denovisor-bench-save-" });
  console.log(`save and restore, Denovisor vs QEMU (restore: median of ${runs}):`);
  try {
    for (const sizeMiB of sizeList) {
      const fills = [8, Math.floor((sizeMiB - 16) * 0.75)];
      for (const fillMiB of values.little ? fills.slice(0, 1) : fills) {
        const cmdline = `fill=${fillMiB}`;
        const config: VmmMachineConfig = {
          vcpus: 1,
          memoryBytes: sizeMiB * MIB,
          boot: { kind: "linux", kernel, cmdline },
          disks: [],
          nics: [],
          balloon: false,
        };
        const stateFile = join(dir, `${sizeMiB}-${fillMiB}.state`);
        const ours = await denovisorSave(kvm, config, stateFile);
        const theirs = await qemuSave(sizeMiB, kernel, cmdline, dir);
        const restores: number[] = [];
        const qemuRestores: number[] = [];
        for (let run = 0; run < runs; run++) {
          restores.push(await denovisorRestore(stateFile));
          qemuRestores.push(await qemuRestore(sizeMiB, kernel, cmdline, theirs.file));
        }
        const r = median(restores);
        const q = median(qemuRestores);
        console.log(
          `  ${String(sizeMiB).padStart(4)} MiB guest, ${
            String(fillMiB).padStart(4)
          } MiB in use: ` +
            `save ${fixed(ours.ms, 0)} ms vs QEMU ${fixed(theirs.ms, 0)} ms ` +
            `(${fixed(ours.ms / theirs.ms)}x); on disk ${fixed(ours.onDisk / MIB, 1)} MiB ` +
            `(memory file ${fixed(ours.apparent / MIB, 0)} MiB apparent) vs QEMU ` +
            `${fixed(theirs.onDisk / MIB, 1)} MiB (${fixed(ours.onDisk / theirs.onDisk)}x); ` +
            `restore to an answering guest ${fixed(r, 0)} ms vs QEMU ${fixed(q, 0)} ms ` +
            `(${fixed(r / q)}x)`,
        );
        await Deno.remove(stateFile);
        await Deno.remove(`${stateFile}.mem`);
        await Deno.remove(theirs.file);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await runBenchmark("save_restore", main);
