/**
 * One running VMM as the daemon sees it: launched by this daemon or re-attached after a
 * daemon restart. The runtime record `<domainRunDir>/domain.json` (what runs, which pid
 * with which start time) lets a new daemon take over a VMM the old one started.
 *
 * @module
 */

import { join } from "node:path";
import type { DomainDefinition, DomainState } from "../api_types.ts";
import type { VmmConfig, VmmEndRecord, VmmStatus } from "../../vmm/vmm_config.ts";
import { writeFileAtomic } from "../store/atomic_file.ts";
import { ApiError } from "../../common/http/mod.ts";
import { VmmControl } from "./vmm_control.ts";
import { prepareLog } from "./console_log.ts";
import {
  prepareVmmSandbox,
  releaseVmmSandbox,
  vmmCgroupLimits,
  vmmCgroupStats,
} from "../sandbox/vmm_sandbox.ts";
import { describeSeccompKill } from "../sandbox/seccomp_report.ts";
import { type PooledVmm, takePooledVmm } from "../sandbox/vmm_pool.ts";
import {
  childPid,
  describeExit,
  namespacePid,
  processStartTime,
  sameProcessAlive,
  signalProcess,
  type SpawnedVmm,
  spawnVmm,
  watchProcess,
} from "./vmm_process.ts";

/** How long a VMM may take from spawn to answering GET /vm. */
export const START_TIMEOUT_MS = 30_000;

/** What `<domainRunDir>/domain.json` holds. */
export interface RuntimeRecord {
  /** The definition the VMM was started from. */
  definition: DomainDefinition;
  persistent: boolean;
  pid: number;
  /** /proc/<pid>/stat start time, so a reused pid is not mistaken for the VMM. */
  pidStartTime: number;
  startedAt: string;
  /** The pool slot of a VMM taken from the pool (../sandbox/vmm_pool.ts), removed at its end. */
  poolSlot?: string;
}

/** Why a run ended, as the daemon gathered it. */
export interface RunEnd {
  /** From end.json; undefined when the VMM died without writing one (a crash). */
  record?: VmmEndRecord;
  /** How the process ended, e.g. "VMM killed by SIGKILL". */
  exit: string;
}

/** One VMM process and the daemon's handle on it. */
export class VmmRun {
  readonly name: string;
  readonly runDir: string;
  readonly record: RuntimeRecord;
  readonly control: VmmControl;
  /** Resolves when the process has gone. */
  readonly exited: Promise<RunEnd>;
  /** The images the VMM has open (from its config). */
  readonly diskPaths: string[];
  /** What the daemon asked for, so the end is read right ("shutdown" is not a crash). */
  intent?: "shutdown" | "destroy";
  /** Settled once the daemon has handled the end (state updated, action applied). */
  readonly handled: Promise<void>;
  #markHandled!: () => void;
  #stopWatch: () => void;

  private constructor(
    name: string,
    runDir: string,
    record: RuntimeRecord,
    status?: Promise<Deno.CommandStatus>,
    logFile?: string,
  ) {
    this.name = name;
    this.runDir = runDir;
    this.record = record;
    this.diskPaths = diskPathsOf(runDir);
    this.control = new VmmControl(name, join(runDir, "vmm.sock"));
    const watch = watchProcess(record.pid, record.pidStartTime, status);
    this.#stopWatch = watch.stop;
    this.exited = watch.exited.then(async (exit) => {
      // Read before the group goes with the sandbox.
      const oomKills = vmmCgroupStats(runDir).cgroup?.oomKills ?? 0;
      releaseVmmSandbox(runDir);
      if (record.poolSlot) {
        // What it said before it had the domain's log (an order it could not follow).
        if (logFile !== undefined) await keepPoolLog(record.poolSlot, logFile);
        await Deno.remove(record.poolSlot, { recursive: true }).catch(() => {});
      }
      return {
        record: await readEndRecord(runDir),
        exit: exit?.signal === "SIGSYS"
          ? describeSeccompKill(record.pid)
          : exit?.signal === "SIGKILL" && oomKills > 0
          ? describeOomKill(record.definition, runDir)
          : describeExit(exit),
      };
    });
    this.handled = new Promise((resolve) => this.#markHandled = resolve);
  }

  get pid(): number {
    return this.record.pid;
  }

  get consoleSocket(): string {
    return join(this.runDir, "console.sock");
  }

  /**
   * Starts a VMM for `config` in `runDir` (emptied first) and waits until its control
   * socket answers; kills it and throws an `ApiError` when it dies or hangs instead.
   */
  static async launch(
    config: VmmConfig,
    definition: DomainDefinition,
    persistent: boolean,
    timeoutMs = START_TIMEOUT_MS,
  ): Promise<VmmRun> {
    const runDir = config.runDir;
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
    const configPath = join(runDir, "config.json");
    await prepareLog(config.logFile);
    const sandbox = await prepareVmmSandbox(definition, config);
    await writeFileAtomic(configPath, JSON.stringify(sandbox.config, null, 2) + "\n");
    sandbox.shareWithVmm(configPath);
    await appendLog(config.logFile, sandbox.notes);
    const recordOf = (pid: number, poolSlot?: string): RuntimeRecord => ({
      definition,
      persistent,
      pid,
      pidStartTime: processStartTime(pid) ?? -1,
      startedAt: new Date().toISOString(),
      ...(poolSlot ? { poolSlot } : {}),
    });
    // Written before the VMM is up (a pooled one before it is handed the domain): a daemon
    // killed right now still finds it afterwards.
    const writeRecord = (record: RuntimeRecord) =>
      writeFileAtomic(join(runDir, "domain.json"), JSON.stringify(record, null, 2) + "\n");
    const pooled = await handToPooled(
      config,
      configPath,
      sandbox,
      (taken) => writeRecord(recordOf(taken.pid, taken.slot)),
    );
    let spawned: SpawnedVmm;
    let record: RuntimeRecord;
    if (pooled !== undefined) {
      spawned = { pid: pooled.launcherPid, status: pooled.status };
      record = recordOf(pooled.pid, pooled.slot);
    } else {
      spawned = spawnVmm(configPath, config.logFile, sandbox);
      // In its own PID namespace the VMM is the launcher's child, not the spawned process.
      record = recordOf(sandbox.pidNamespace ? await childPid(spawned.pid) : spawned.pid);
      // Replaces the record of a pooled VMM whose hand-over failed.
      await writeRecord(record);
    }
    const run = new VmmRun(config.name, runDir, record, spawned.status, config.logFile);
    try {
      await run.#waitReady(timeoutMs, config.logFile);
      sandbox.started();
    } catch (error) {
      sandbox.started();
      run.kill();
      await run.exited;
      run.dispose();
      throw error;
    }
    return run;
  }

  /** Takes over the VMM of a runtime record a previous daemon left in `runDir`. */
  static attach(name: string, runDir: string, record: RuntimeRecord): VmmRun {
    return new VmmRun(name, runDir, record);
  }

  /** Reads the runtime record of `runDir`, or undefined when there is none or it is damaged. */
  static async readRecord(runDir: string): Promise<RuntimeRecord | undefined> {
    try {
      const record = JSON.parse(await Deno.readTextFile(join(runDir, "domain.json")));
      if (typeof record?.pid !== "number" || typeof record?.definition?.name !== "string") {
        return undefined;
      }
      return record as RuntimeRecord;
    } catch {
      return undefined;
    }
  }

  /** Whether the process is still there. */
  alive(): boolean {
    return sameProcessAlive(this.record.pid, this.record.pidStartTime);
  }

  /** The VMM's view of the domain's state. */
  async state(): Promise<DomainState> {
    return (await this.control.call<VmmStatus>("GET", "/vm")).state;
  }

  /** SIGKILL, the last resort (the VM dies with its process). */
  kill(): void {
    if (this.alive()) signalProcess(this.record.pid, "SIGKILL");
  }

  /**
   * Stops the VMM: asks it to destroy the VM, then SIGKILLs it if it has not gone within
   * a few seconds; resolves once the process is gone.
   */
  async destroy(): Promise<RunEnd> {
    this.intent = "destroy";
    const asked = await this.control.call("POST", "/vm/destroy", {}, 3000).then(
      () => true,
      () => false,
    );
    if (!asked || !(await settlesWithin(this.exited, 5000))) this.kill();
    return await this.exited;
  }

  /** Marks the end as handled and lets go of the socket connection. */
  dispose(): void {
    this.#stopWatch();
    this.control.close();
    this.#markHandled();
  }

  /** Removes the run directory (after the end has been read). */
  async removeRunDir(): Promise<void> {
    await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
  }

  async #waitReady(timeoutMs: number, logFile: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.exited.then(() => exited = true);
    let lastError = "";
    while (Date.now() < deadline) {
      if (exited) {
        const end = await this.exited;
        throw new ApiError(
          "internal",
          `The VMM of domain '${this.name}' ended during start-up (${
            end.record?.detail ?? end.exit
          }); its log ${logFile} ends with:\n${await logTail(logFile, 10)}`,
        );
      }
      const pidText = await Deno.readTextFile(join(this.runDir, "vmm.pid")).catch(() => "");
      // A VMM in its own PID namespace writes its pid there (1).
      if (Number(pidText.trim()) === (namespacePid(this.record.pid) ?? this.record.pid)) {
        try {
          const remaining = Math.max(500, Math.min(5000, deadline - Date.now()));
          await this.control.call("GET", "/vm", undefined, remaining);
          return;
        } catch (error) {
          lastError = error instanceof Error ? error.message : String(error);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new ApiError(
      "timeout",
      `The VMM of domain '${this.name}' did not become ready within ${timeoutMs / 1000} s` +
        `${lastError ? ` (${lastError})` : ""}; it was killed; see ${logFile}`,
    );
  }
}

/**
 * Gives a fresh boot's jailed VMM a pre-started one from the pool when there is one
 * (../sandbox/vmm_pool.ts); undefined when there is none or the hand-over failed (said in
 * the log), and the caller starts one as before.
 */
async function handToPooled(
  config: VmmConfig,
  configPath: string,
  sandbox: Awaited<ReturnType<typeof prepareVmmSandbox>>,
  beforeHand: (pooled: PooledVmm) => Promise<void>,
): Promise<PooledVmm | undefined> {
  // Restores start their own (they could take one the same way). A migration's receiver
  // takes one: its start is then out of the migration's total time, as QEMU's -incoming.
  if (!sandbox.grants || config.restore !== undefined) {
    return undefined;
  }
  const pooled = takePooledVmm();
  if (pooled === undefined) return undefined;
  try {
    await beforeHand(pooled);
    await pooled.hand({ ...sandbox.grants, configPath });
  } catch (error) {
    await appendLog(config.logFile, [
      `pooled VMM ${pooled.pid} could not be handed this domain (${
        (error as Error).message
      }); starting one`,
    ]);
    await pooled.status.catch(() => {});
    await Deno.remove(pooled.slot, { recursive: true }).catch(() => {});
    return undefined;
  }
  await appendLog(config.logFile, [`VMM pid ${pooled.pid} taken from the pool`]);
  return pooled;
}

/**
 * Appends the last lines of a pooled VMM's `<slot>/pool.log` (what it wrote before it
 * redirected its output to the domain's log: an order it could not follow, such as an
 * unreadable config) to the domain's log, before the slot goes.
 */
export async function keepPoolLog(slot: string, logFile: string): Promise<void> {
  const poolLog = join(slot, "pool.log");
  const tail = await logTail(poolLog, 20, "");
  if (tail === "") return;
  await appendLog(logFile, [
    `the pooled VMM's output before it had this log (${poolLog}):`,
    ...tail.split("\n"),
  ]);
}

/** Appends daemon remarks to a domain's log, one line each, as the VMM's lines look. */
async function appendLog(logFile: string, lines: readonly string[]): Promise<void> {
  const stamp = new Date().toISOString();
  const text = lines.map((line) => `[${stamp}] denovisor daemon: ${line}\n`).join("");
  await Deno.writeTextFile(logFile, text, { append: true }).catch(() => {});
}

/** The disk images named in `<runDir>/config.json`. */
function diskPathsOf(runDir: string): string[] {
  try {
    const config = JSON.parse(Deno.readTextFileSync(join(runDir, "config.json")));
    return (config.disks ?? []).map((disk: { path: string }) => String(disk.path));
  } catch {
    return [];
  }
}

/** end.json of `runDir`, when present and well-formed. */
async function readEndRecord(runDir: string): Promise<VmmEndRecord | undefined> {
  try {
    const record = JSON.parse(await Deno.readTextFile(join(runDir, "end.json")));
    const kinds = ["poweroff", "reboot", "crash", "destroyed"];
    if (!kinds.includes(record?.kind)) return undefined;
    return { kind: record.kind, detail: String(record.detail ?? ""), time: String(record.time) };
  } catch {
    return undefined;
  }
}

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last `lines` lines of a log file (from at most its last 1 MiB); `missing` if unreadable. */
export async function logTail(path: string, lines: number, missing = "(no log)"): Promise<string> {
  try {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      const start = Math.max(0, size - 1024 * 1024);
      await file.seek(start, Deno.SeekMode.Start);
      const buffer = new Uint8Array(size - start);
      let offset = 0;
      while (offset < buffer.length) {
        const n = await file.read(buffer.subarray(offset));
        if (n === null) break;
        offset += n;
      }
      const text = new TextDecoder().decode(buffer.subarray(0, offset));
      return text.split("\n").filter((l) => l !== "").slice(-lines).join("\n");
    } finally {
      file.close();
    }
  } catch {
    return missing;
  }
}

/** Words for a VMM the kernel killed for going over its memory cgroup. */
function describeOomKill(definition: DomainDefinition, runDir: string): string {
  let limit = "";
  try {
    const config = JSON.parse(Deno.readTextFileSync(join(runDir, "config.json")));
    const bytes = vmmCgroupLimits(config, definition.cpu).memoryBytes;
    limit = ` (${Math.round(bytes / 1048576)} MiB: guest RAM and the VMM's overhead)`;
  } catch {
    // the figure is only for people
  }
  return `VMM killed by the kernel: out of memory in its cgroup${limit}`;
}
