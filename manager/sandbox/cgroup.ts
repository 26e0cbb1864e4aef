/**
 * One cgroup per domain, created by the daemon and entered by the VMM before it execs
 * (see ./launcher.ts), so every thread and every byte the VMM allocates is counted from
 * its first instruction. cgroup v2 where its controllers are usable; otherwise the v1
 * `memory`, `pids` and `cpu` hierarchies (hybrid hosts such as this project's test host
 * mount v2 at /sys/fs/cgroup/unified with no controllers).
 *
 * Domain cgroups live under the daemon's own cgroup (`<own>/denovisor/<domain>`), so a
 * daemon in a systemd unit stays inside its unit (which needs `Delegate=yes`) and a
 * daemon in a container inside the container's.
 *
 * @module
 */

import { join } from "node:path";
import { DenovisorError } from "../../common/errors.ts";

/** What a domain's VMM may use. */
export interface CgroupLimits {
  /** memory.max / memory.limit_in_bytes. */
  memoryBytes: number;
  /** pids.max: threads count too (one per vCPU Worker plus the runtime's). */
  pids: number;
  /** Relative CPU weight, 1-10000 (100 is the default share). */
  cpuWeight?: number;
  /** CPU quota in percent of one CPU (150 = one and a half CPUs). */
  cpuMaxPercent?: number;
}

/** Where the controllers are: one v2 directory, or one directory per v1 controller. */
export type CgroupHost =
  | { version: 2; root: string }
  | { version: 1; memory: string; pids: string; cpu: string };

/** A cgroup that could not be created, filled or read. */
export class CgroupError extends DenovisorError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
  }
}

const V2_CONTROLLERS = ["memory", "pids", "cpu"] as const;
const CPU_PERIOD_US = 100_000;

/** Mount points of cgroup filesystems from /proc/self/mountinfo text: v2 and v1 by controller. */
export function parseCgroupMounts(mountinfo: string): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const mountPoint = left.split(" ")[4];
    const [fsType, , superOptions = ""] = right.split(" ");
    if (fsType === "cgroup2") v2 ??= mountPoint;
    if (fsType !== "cgroup") continue;
    for (const option of superOptions.split(",")) {
      if (["memory", "pids", "cpu"].includes(option)) v1.set(option, mountPoint);
    }
  }
  return { v2, v1 };
}

/** This process's cgroup path per v1 controller and in v2 (key ""), from /proc/self/cgroup text. */
export function parseOwnCgroups(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = line.match(/^\d+:([^:]*):(.*)$/);
    if (!match) continue;
    if (match[1] === "") paths.set("", match[2]);
    for (const controller of match[1].split(",")) paths.set(controller, match[2]);
  }
  return paths;
}

/**
 * The controllers of this host, rooted at this process's own cgroups, or a `CgroupError`
 * naming what is missing. v2 is chosen when it offers memory, pids and cpu.
 */
export function detectCgroups(
  mountinfo = Deno.readTextFileSync("/proc/self/mountinfo"),
  own = Deno.readTextFileSync("/proc/self/cgroup"),
  readControllers = (dir: string) => Deno.readTextFileSync(join(dir, "cgroup.controllers")),
): CgroupHost {
  const mounts = parseCgroupMounts(mountinfo);
  const paths = parseOwnCgroups(own);
  if (mounts.v2 !== undefined) {
    const root = under(mounts.v2, paths.get("") ?? "/");
    let available: string[] = [];
    try {
      available = readControllers(root).trim().split(/\s+/);
    } catch { /* not readable: fall back to v1 */ }
    if (V2_CONTROLLERS.every((c) => available.includes(c))) return { version: 2, root };
  }
  const dir = (controller: string) => {
    const mount = mounts.v1.get(controller);
    if (mount === undefined) {
      throw new CgroupError(
        `This host has no usable cgroup '${controller}' controller (neither cgroup v2 with ` +
          `memory, pids and cpu nor a v1 hierarchy); run domains with "sandbox": false`,
      );
    }
    return under(mount, paths.get(controller) ?? "/");
  };
  return { version: 1, memory: dir("memory"), pids: dir("pids"), cpu: dir("cpu") };
}

/** `path` (a cgroup path, "/" for the root) inside the hierarchy mounted at `mount`. */
function under(mount: string, path: string): string {
  return path === "/" ? mount : join(mount, path);
}

/** What a domain's cgroup reports (for `stats`). */
export interface CgroupStats {
  memoryBytes: number;
  /** Absent when unlimited. */
  memoryLimitBytes?: number;
  /** How many times the kernel's OOM killer ran in the cgroup. */
  oomKills: number;
  pids: number;
}

function write(path: string, text: string): void {
  try {
    Deno.writeTextFileSync(path, text);
  } catch (error) {
    throw new CgroupError(`Cannot write '${text}' to ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** `{memoryLimitBytes}` unless `bytes` means no limit ("max", or v1's page-rounded 2^63). */
function limit(bytes: number): { memoryLimitBytes?: number } {
  return bytes >= 2 ** 62 ? {} : { memoryLimitBytes: bytes };
}

function readNumber(path: string): number {
  const text = Deno.readTextFileSync(path).trim();
  return text === "max" ? Infinity : Number(text);
}

/** The group of one domain: created with its limits, entered by the VMM, removed at its end. */
export class DomainCgroup {
  /** The cgroup.procs files a process writes its pid to, to enter the group. */
  readonly procsFiles: readonly string[];
  readonly #host: CgroupHost;
  readonly #dirs: readonly string[];
  readonly #pidsDir: string;

  private constructor(host: CgroupHost, dirs: string[], pidsDir: string) {
    this.#host = host;
    this.#dirs = dirs;
    this.#pidsDir = pidsDir;
    this.procsFiles = dirs.map((dir) => join(dir, "cgroup.procs"));
  }

  /** The directory (v2) or the memory controller's directory (v1). */
  get path(): string {
    return this.#dirs[0];
  }

  /**
   * Creates (or reuses, after a crash) `<own>/denovisor/<name>` with `limits`. `name` is
   * a domain name, already validated; it is checked again here because it becomes a path.
   */
  static create(host: CgroupHost, name: string, limits: CgroupLimits): DomainCgroup {
    const { dirs, pidsDir } = groupDirs(host, name);
    if (host.version === 2) {
      const parent = join(host.root, "denovisor");
      delegateControllers(host.root);
      mkdirs(parent);
      // Children get the controllers only when their parent hands them down.
      write(join(parent, "cgroup.subtree_control"), V2_CONTROLLERS.map((c) => `+${c}`).join(" "));
      const dir = dirs[0];
      freshGroup(dir);
      write(join(dir, "memory.max"), `${limits.memoryBytes}`);
      write(join(dir, "pids.max"), `${limits.pids}`);
      if (limits.cpuWeight !== undefined) write(join(dir, "cpu.weight"), `${limits.cpuWeight}`);
      const quota = limits.cpuMaxPercent === undefined
        ? "max"
        : `${Math.round(CPU_PERIOD_US * limits.cpuMaxPercent / 100)}`;
      write(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
      return new DomainCgroup(host, dirs, pidsDir);
    }
    dirs.forEach(freshGroup);
    const [memory, pids, cpu] = [host.memory, host.pids, host.cpu].map((root) =>
      join(root, "denovisor", name)
    );
    write(join(memory, "memory.limit_in_bytes"), `${limits.memoryBytes}`);
    write(join(pids, "pids.max"), `${limits.pids}`);
    // v1 shares: 1024 is the default weight of 100.
    const shares = Math.max(2, Math.round((limits.cpuWeight ?? 100) * 1024 / 100));
    write(join(cpu, "cpu.shares"), `${shares}`);
    write(join(cpu, "cpu.cfs_period_us"), `${CPU_PERIOD_US}`);
    const quota = limits.cpuMaxPercent === undefined
      ? -1
      : Math.round(CPU_PERIOD_US * limits.cpuMaxPercent / 100);
    write(join(cpu, "cpu.cfs_quota_us"), `${quota}`);
    return new DomainCgroup(host, dirs, pidsDir);
  }

  /** The group of domain `name` if it exists (a previous run's, to remove). */
  static existing(host: CgroupHost, name: string): DomainCgroup | undefined {
    const { dirs, pidsDir } = groupDirs(host, name);
    try {
      Deno.statSync(dirs[0]);
    } catch {
      return undefined;
    }
    return new DomainCgroup(host, dirs, pidsDir);
  }

  /**
   * Removes the domain groups left empty for more than `minAgeMs` (their VMM ended while
   * no daemon watched: a daemon killed, a test's daemon): the kernel refuses to remove a
   * group that still holds a process, and a group younger than `minAgeMs` may be one a
   * daemon just made for a VMM it is about to start. Returns how many went.
   */
  static sweep(
    host: CgroupHost,
    minAgeMs: number,
    options: { now?: number; prefix?: string } = {},
  ): number {
    const now = options.now ?? Date.now();
    const roots = host.version === 2 ? [host.root] : [host.memory, host.pids, host.cpu];
    let removed = 0;
    for (const root of new Set(roots)) {
      const parent = join(root, "denovisor");
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(parent)];
      } catch {
        continue;
      }
      for (const entry of entries) {
        if (!entry.isDirectory || !entry.name.startsWith(options.prefix ?? "")) continue;
        const dir = join(parent, entry.name);
        try {
          const made = Deno.statSync(dir).mtime?.getTime() ?? now;
          if (now - made < minAgeMs) continue;
          Deno.removeSync(dir);
          removed++;
        } catch {
          // Populated (EBUSY) or gone already.
        }
      }
    }
    return removed;
  }

  /** Moves process `pid` (all its threads) into the group. */
  add(pid: number): void {
    for (const file of this.procsFiles) write(file, `${pid}`);
  }

  /** The pids in the group. */
  pids(): number[] {
    return Deno.readTextFileSync(this.procsFiles[0]).split("\n").filter((l) => l !== "").map(
      Number,
    );
  }

  /** Current figures. */
  stats(): CgroupStats {
    const [first] = this.#dirs;
    if (this.#host.version === 2) {
      const events = Deno.readTextFileSync(join(first, "memory.events"));
      return {
        memoryBytes: readNumber(join(first, "memory.current")),
        ...limit(readNumber(join(first, "memory.max"))),
        oomKills: Number(events.match(/^oom_kill (\d+)$/m)?.[1] ?? 0),
        pids: readNumber(join(first, "pids.current")),
      };
    }
    const oom = Deno.readTextFileSync(join(first, "memory.oom_control"));
    return {
      memoryBytes: readNumber(join(first, "memory.usage_in_bytes")),
      ...limit(readNumber(join(first, "memory.limit_in_bytes"))),
      oomKills: Number(oom.match(/^oom_kill (\d+)$/m)?.[1] ?? 0),
      pids: readNumber(join(this.#pidsDir, "pids.current")),
    };
  }

  /**
   * Removes the group once its processes are gone; true when it is gone. A group with a
   * process left (a VMM being killed) cannot be removed: the kernel answers EBUSY.
   */
  remove(): boolean {
    let removed = true;
    for (const dir of this.#dirs) {
      try {
        Deno.removeSync(dir);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) removed = false;
      }
    }
    return removed;
  }
}

/** The directories of domain `name`'s group (one per distinct v1 hierarchy), memory's first. */
function groupDirs(host: CgroupHost, name: string): { dirs: string[]; pidsDir: string } {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    throw new CgroupError(`'${name}' cannot name a cgroup`);
  }
  if (host.version === 2) {
    const dir = join(host.root, "denovisor", name);
    return { dirs: [dir], pidsDir: dir };
  }
  const [memory, pids, cpu] = [host.memory, host.pids, host.cpu].map((root) =>
    join(root, "denovisor", name)
  );
  return { dirs: [...new Set([memory, pids, cpu])], pidsDir: pids };
}

/**
 * Makes a domain's group anew when an empty one is left over, so its age (which `sweep`
 * goes by) is this start's; one that still holds a process (a VMM being killed) is kept.
 */
function freshGroup(dir: string): void {
  try {
    Deno.removeSync(dir);
  } catch {
    // Absent, or populated: mkdirs keeps it.
  }
  mkdirs(dir);
}

function mkdirs(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new CgroupError(`Cannot create the cgroup ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Makes `root` (this process's own v2 cgroup) hand memory, pids and cpu down to its
 * children. The kernel refuses that while processes sit in `root` itself (the "no
 * internal processes" rule; the root of the hierarchy is exempt), so this process first
 * moves into a leaf `<root>/daemon`, as a delegated systemd service does.
 */
function delegateControllers(root: string): void {
  const control = join(root, "cgroup.subtree_control");
  const wanted = V2_CONTROLLERS.map((c) => `+${c}`).join(" ");
  const enabled = Deno.readTextFileSync(control).trim().split(/\s+/);
  if (V2_CONTROLLERS.every((c) => enabled.includes(c))) return;
  try {
    Deno.writeTextFileSync(control, wanted);
    return;
  } catch {
    // Processes in root: move this one out of the way and retry.
  }
  const leaf = join(root, "daemon");
  mkdirs(leaf);
  write(join(leaf, "cgroup.procs"), `${Deno.pid}`);
  write(control, wanted);
}
