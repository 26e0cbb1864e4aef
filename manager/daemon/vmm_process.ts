/**
 * Starting and watching `denovisor vmm` processes: the command that re-runs this very
 * program, a detached spawn whose output lands in the domain's log file, and the
 * /proc checks that tell a live VMM from a dead one (or from an unrelated process that
 * got its pid).
 *
 * @module
 */

import { basename } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN_MODULE = fileURLToPath(new URL("../../main.ts", import.meta.url));

/**
 * The argv that runs this program again: the executable alone when it is the
 * `deno compile`d denovisor, `deno run -A <abs main.ts>` when run from source.
 * `DENOVISOR_VMM_COMMAND` (a JSON array) replaces it, for tests that need a VMM
 * that misbehaves.
 */
export function selfCommand(): string[] {
  const override = Deno.env.get("DENOVISOR_VMM_COMMAND");
  if (override) {
    const argv = JSON.parse(override);
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string")) {
      throw new Error("DENOVISOR_VMM_COMMAND must be a JSON array of strings");
    }
    return argv;
  }
  // A compiled program's modules live under a synthetic "deno-compile-" root, and its
  // executable is not called deno.
  const compiled = import.meta.url.includes("/deno-compile-") ||
    !/^deno$/.test(basename(Deno.execPath()));
  if (compiled) return [Deno.execPath()];
  return [Deno.execPath(), "run", "--allow-all", "--no-prompt", MAIN_MODULE];
}

/** The VMM's entry points, for `warmVmmModules`. */
const VMM_ENTRIES = ["../../cli/vmm_main.ts", "../../vmm/vcpu_worker_main.ts"].map((path) =>
  fileURLToPath(new URL(path, import.meta.url))
);

/**
 * Fills Deno's cache with the VMM's modules, transpiled, when this program runs from
 * source: a jailed VMM runs as an unprivileged user with that cache bound read-only
 * (../sandbox/jail.ts), so what is missing there (a module changed since root last ran
 * it) it type-strips again at every start, 0.2-0.3 s of CPU per VMM here. Resolves with
 * why it failed, or undefined.
 */
export async function warmVmmModules(timeoutMs = 60_000): Promise<string | undefined> {
  const command = selfCommand();
  if (command.length === 1 || Deno.env.get("DENOVISOR_VMM_COMMAND")) return undefined;
  try {
    const output = await new Deno.Command(command[0], {
      args: ["cache", "--quiet", ...VMM_ENTRIES],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      clearEnv: true,
      env: vmmEnvironment(),
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    if (output.success) return undefined;
    return new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3).join(" | ");
  } catch (error) {
    return (error as Error).message;
  }
}

/** A VMM process this daemon spawned. */
export interface SpawnedVmm {
  pid: number;
  /** Resolves when the process exits (this daemon is its parent and reaps it). */
  status: Promise<Deno.CommandStatus>;
}

/**
 * Starts `<self> vmm --config <configPath>` in its own session, stdin from /dev/null and
 * stdout/stderr appended to `logFile`, so that it outlives the daemon and a crash
 * message still lands in the log. `sandbox` puts the launcher's commands before it
 * (each execs the next, so the pid stays the VMM's) and adds arguments after it.
 */
export function spawnVmm(
  configPath: string,
  logFile: string,
  sandbox: { prefix: readonly string[]; vmmArgs: readonly string[] } = { prefix: [], vmmArgs: [] },
): SpawnedVmm {
  return spawnDetached([
    ...sandbox.prefix,
    ...selfCommand(),
    "vmm",
    "--config",
    configPath,
    ...sandbox.vmmArgs,
  ], logFile);
}

/**
 * Starts `argv` in its own session with stdin from /dev/null and stdout/stderr appended to
 * `logFile`, with the VMM's environment (also how the pool starts its VMMs: ../sandbox/vmm_pool.ts).
 */
export function spawnDetached(argv: readonly string[], logFile: string): SpawnedVmm {
  // sh execs the VMM after redirecting, so the pid is the VMM's own.
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$@" >>"$0" 2>&1 </dev/null', logFile, ...argv],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    // NOTIFY_SOCKET is the daemon's alone: a VMM must not speak for the service.
    clearEnv: true,
    env: vmmEnvironment(),
    detached: true,
  }).spawn();
  child.unref();
  return { pid: child.pid, status: child.status };
}

/**
 * The pid of the first child of `launcher` (a VMM in its own PID namespace is the child
 * of the launcher's reaper, ../sandbox/launcher.ts), polled for up to `timeoutMs`; `launcher` itself when
 * it ends first (its exit status then tells why) or never forks.
 */
export async function childPid(launcher: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let children = "";
    try {
      children = Deno.readTextFileSync(`/proc/${launcher}/task/${launcher}/children`);
    } catch {
      return launcher; // gone
    }
    const first = Number(children.trim().split(" ")[0]);
    if (Number.isInteger(first) && first > 0) return first;
    if (processStartTime(launcher) === undefined) return launcher; // a zombie
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return launcher;
}

/** The pid of `pid` inside its own PID namespace (the last NSpid field), if readable. */
export function namespacePid(pid: number): number | undefined {
  try {
    const line = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^NSpid:\s+(.*)$/m)?.[1];
    const last = Number(line?.trim().split(/\s+/).at(-1));
    return Number.isInteger(last) ? last : undefined;
  } catch {
    return undefined;
  }
}

/** This process's environment without what belongs to the daemon's service manager. */
function vmmEnvironment(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.NOTIFY_SOCKET;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  // From source, deno would check for updates from a runtime thread: a network socket
  // the VMM's seccomp filter refuses.
  env.DENO_NO_UPDATE_CHECK = "1";
  return env;
}

/**
 * The start time of process `pid` (field 22 of /proc/<pid>/stat, in clock ticks since
 * boot), or undefined when there is no such live process (zombies count as dead).
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  const startTime = Number(fields[19]);
  return Number.isFinite(startTime) ? startTime : undefined;
}

/** Whether `pid` is still the process that had `startTime`. */
export function sameProcessAlive(pid: number, startTime: number): boolean {
  return processStartTime(pid) === startTime;
}

/** The resident set of `pid` in bytes (VmRSS), or 0 when it cannot be read. */
export function processRssBytes(pid: number): number {
  try {
    const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB$/m);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sends `signal` to `pid`; false when it is already gone. */
export function signalProcess(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** How often a VMM's liveness is polled. */
export const WATCH_INTERVAL_MS = 250;

/**
 * Resolves once process `pid` (started at `startTime`) has gone, polling /proc every
 * `WATCH_INTERVAL_MS`; `status` (for a child of this daemon) settles it at once and
 * tells how it ended. `stop` ends the watch without resolving.
 */
export function watchProcess(
  pid: number,
  startTime: number,
  status?: Promise<Deno.CommandStatus>,
): { exited: Promise<Deno.CommandStatus | undefined>; stop: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const exited = new Promise<Deno.CommandStatus | undefined>((resolve) => {
    status?.then((s) => {
      if (!stopped) resolve(s);
    }, () => {});
    const poll = () => {
      if (stopped) return;
      if (!sameProcessAlive(pid, startTime)) {
        // A child of ours: its status arrives a moment later and says how it ended.
        if (status) setTimeout(() => resolve(undefined), 2000);
        else resolve(undefined);
        return;
      }
      timer = setTimeout(poll, WATCH_INTERVAL_MS);
    };
    timer = setTimeout(poll, WATCH_INTERVAL_MS);
  });
  exited.finally(() => clearTimeout(timer));
  return {
    exited,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Words for how a VMM process ended, e.g. "VMM killed by SIGKILL". */
export function describeExit(status: Deno.CommandStatus | undefined): string {
  if (status === undefined) return "VMM exited";
  if (status.signal) return `VMM killed by ${status.signal}`;
  return `VMM exited with status ${status.code}`;
}
