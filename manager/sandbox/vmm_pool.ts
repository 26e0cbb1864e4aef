/**
 * Pre-started VMM processes (a zygote pool): `denovisor vmm --pool-socket FD` processes
 * started ahead of any domain, so that a domain's start skips the launcher's jail set-up
 * and Deno's start-up (together most of a start, bench/README.md).
 *
 * A pooled VMM is jailed from its first instruction like any VMM (./launcher.ts steps 2
 * to 5: its own namespaces, a chroot holding only the program, no capabilities, the VMMs'
 * unprivileged user), but generically: the pool's cgroup, no descriptor, no run directory. When a
 * domain takes it (`PooledVmm.hand`), the daemon gives it exactly what the launcher would
 * have: it moves the process into the domain's cgroup, binds the domain's run directory,
 * log and stat-only paths into its jail (in its mount namespace, `grantCommand`), opens
 * the domain's descriptors as root and sends them with the order over SCM_RIGHTS
 * (vmm/pool_order.ts). The process then runs that one domain and nothing else: it is
 * never given back, so no guest memory or state can pass from one domain to another.
 *
 * Each pooled VMM holds one end of a socket pair whose other end only the daemon has: if
 * the daemon dies (even by SIGKILL) or drains the pool, the VMM sees the end of the
 * socket and exits, so no pooled process outlives its daemon (PR_SET_PDEATHSIG would name
 * the VMM's parent, the launcher's reaper, not the daemon). A taken VMM has closed its
 * end and outlives the daemon like any domain's VMM.
 *
 * A pooled VMM enters the pool's own cgroup (`vmm-pool.<hash>` beside the domains' groups,
 * ./cgroup.ts) in the launcher's first step, before it has touched a page. Cgroups charge
 * a page where it was first touched and do not move charges with the process, so what it
 * touched while loading (about 85 MiB) stays charged to the pool's group for as long as the
 * taken VMM keeps it, and only what it touches afterwards counts against the domain's
 * limits. Without that group it would be the daemon's group, which a daemon under a memory
 * limit (systemd's MemoryMax=) would see fill until the kernel killed the daemon. The
 * pool's group is limited to `POOLED_VMM_MEMORY_BYTES` for each VMM waiting and for each
 * taken one still running (its start-up pages), so a pool gone wrong meets its own limit.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY, O_RDWR } from "../../ffi/libc_symbols.ts";
import { receiveFds, sendFds, setInheritable, socketPair } from "../../ffi/scm_rights.ts";
import { pollReadable } from "../../ffi/socket.ts";
import { encodePoolOrder, MAX_ORDER_FDS } from "../../vmm/pool_order.ts";
import type { HandedDescriptors } from "../../common/handed_descriptors.ts";
import type { SeccompMode } from "../../vmm/sandbox/seccomp_filter.ts";
import {
  childPid,
  processStartTime,
  selfCommand,
  signalProcess,
  spawnDetached,
} from "../daemon/vmm_process.ts";
import {
  grantCommand,
  missingFeatures,
  pooledLauncherPrefix,
  type SandboxPlan,
  sandboxSupport,
} from "./launcher.ts";
import { jailBinds } from "./jail.ts";
import { type CgroupHost, detectCgroups, DomainCgroup } from "./cgroup.ts";
import { createHash } from "node:crypto";
import { vmmUser } from "./vmm_user.ts";

/**
 * The pool size of `denovisor daemon` without `--vmm-pool`: off for now, because a taken
 * VMM's command line names no config (`--pool-socket FD`) and tools (and tests) that find
 * a domain's VMM by its command line rather than by its pid would miss it.
 */
export const DEFAULT_VMM_POOL_SIZE = 0;
/**
 * What the pool's cgroup allows for each pooled VMM: a loaded, waiting VMM has touched
 * about 85 MiB (Deno, the VMM's modules, vCPU 0's Worker); twice that leaves room.
 */
export const POOLED_VMM_MEMORY_BYTES = 192 * 1024 * 1024;
/** The pool's pids.max for each VMM (threads count; the domains' figure). */
const POOLED_VMM_PIDS = 1024;
/** How often starting pooled VMMs are asked whether they are ready. */
const READY_POLL_MS = 20;
/** The source tree, when run from source. */
const SOURCE_ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** What a domain gives the pooled VMM it takes. */
export interface PoolHandOver {
  /** The domain's sandbox plan (its cgroups, descriptors, binds); its jail root is unused. */
  plan: SandboxPlan;
  /** The descriptor table written for the plan's descriptors (fd 3 is the first). */
  descriptors: HandedDescriptors;
  seccomp: SeccompMode;
  /** The VMM config, inside the run directory (bound into the jail). */
  configPath: string;
}

/** One pre-started VMM, taken out of the pool. */
export interface PooledVmm {
  /** The VMM's host pid (pid 1 of its own PID namespace). */
  readonly pid: number;
  /** The launcher's reaper the daemon spawned, and its end (the VMM's). */
  readonly launcherPid: number;
  readonly status: Promise<Deno.CommandStatus>;
  /** Its slot directory (its jail root is `<slot>/root`): remove it once the VMM has gone. */
  readonly slot: string;
  /** Gives the VMM its domain; throws (and kills it) when that fails. */
  hand(handOver: PoolHandOver): Promise<void>;
  /** Kills the VMM (a hand-over that failed, a pool drained). */
  kill(): void;
}

interface Member {
  vmm: PooledVmm;
  /** The daemon's end of the VMM's socket (closed once handed or killed). */
  socket: number;
  ready: boolean;
}

/** A pool of `size` pre-started VMMs in `dir`, refilled in the background. */
export class VmmPool {
  readonly size: number;
  readonly dir: string;
  readonly #log: (line: string) => void;
  readonly #waiting: Member[] = [];
  #starting = 0;
  #stopped = false;
  #poller: ReturnType<typeof setInterval> | undefined;
  #counter = 0;
  #cgroupHost: CgroupHost | undefined;
  /** Taken VMMs still running: their start-up pages stay charged to the pool's group. */
  #taken = 0;

  constructor(dir: string, size: number, log: (line: string) => void = () => {}) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError("The pool size is a count");
    this.dir = dir;
    this.size = size;
    this.#log = log;
  }

  /**
   * Removes slots whose VMM has gone (a killed daemon's), then fills the pool; a host
   * without the sandbox, or a stand-in VMM command (DENOVISOR_VMM_COMMAND), gets none.
   */
  async start(): Promise<void> {
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    sweepSlots(this.dir);
    if (this.size === 0) return;
    const missing = missingFeatures(await sandboxSupport());
    let cgroups: string | undefined;
    try {
      this.#cgroupHost = detectCgroups();
    } catch (error) {
      cgroups = (error as Error).message;
    }
    if (missing.length > 0 || cgroups || Deno.env.get("DENOVISOR_VMM_COMMAND")) {
      this.#log(
        `no VMM pool: ${
          missing.length > 0
            ? `this host lacks ${missing.join(", ")}`
            : cgroups
            ? `no cgroup for it (${cgroups})`
            : "DENOVISOR_VMM_COMMAND is set"
        }`,
      );
      return;
    }
    this.#fill();
  }

  /** The pids of the VMMs waiting (ready or still loading). */
  pids(): number[] {
    return this.#waiting.map((member) => member.vmm.pid);
  }

  /** How many are loaded and waiting. */
  readyCount(): number {
    return this.#waiting.filter((member) => member.ready).length;
  }

  /**
   * A loaded pooled VMM for one domain, or undefined when none is ready: one still loading
   * is not handed out, since with the refill loading one at a time, starts in a burst would
   * queue behind it, where fresh launches run side by side (bench/README.md).
   */
  take(): PooledVmm | undefined {
    const index = this.#waiting.findIndex((member) => member.ready);
    if (index < 0) return undefined;
    const [member] = this.#waiting.splice(index, 1);
    this.#taken++;
    member.vmm.status.catch(() => {}).finally(() => {
      this.#taken--;
      if (!this.#stopped) this.#poolCgroup(); // its start-up pages went with it
    });
    this.#fill();
    return member.vmm;
  }

  /** The name of the pool's cgroup: `vmm-pool.` and a hash of its directory (one per daemon). */
  get cgroupName(): string {
    return `vmm-pool.${createHash("sha256").update(this.dir).digest("hex").slice(0, 8)}`;
  }

  /**
   * Creates (or resizes) the pool's cgroup for `size` waiting VMMs plus the taken ones
   * still running; returns its cgroup.procs files, or [] with a log line if it cannot.
   */
  #poolCgroup(): readonly string[] {
    if (this.#cgroupHost === undefined) return [];
    const count = this.size + this.#taken;
    try {
      return DomainCgroup.create(this.#cgroupHost, this.cgroupName, {
        memoryBytes: count * POOLED_VMM_MEMORY_BYTES,
        pids: this.size * POOLED_VMM_PIDS,
      }).procsFiles;
    } catch (error) {
      this.#log(`the VMM pool's cgroup: ${(error as Error).message}`);
      return [];
    }
  }

  /** Kills the VMMs still waiting and starts no more; resolves once they have gone. */
  async drain(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#poller);
    const members = this.#waiting.splice(0);
    for (const member of members) member.vmm.kill();
    await Promise.all(members.map((member) => member.vmm.status.catch(() => {})));
    for (const member of members) {
      await Deno.remove(member.vmm.slot, { recursive: true }).catch(() => {});
    }
    // Empty now unless a taken VMM still runs in it (EBUSY: the domains' sweep takes it later).
    if (this.#cgroupHost) DomainCgroup.existing(this.#cgroupHost, this.cgroupName)?.remove();
  }

  #fill(): void {
    // One start at a time, the next once it has loaded: each costs a Deno start-up of CPU,
    // which a domain starting meanwhile needs more.
    const loading = this.#starting > 0 || this.#waiting.some((member) => !member.ready);
    if (this.#stopped || loading || this.#waiting.length >= this.size) return;
    this.#starting++;
    this.#spawn().then((member) => {
      if (this.#stopped) {
        member.vmm.kill();
        return;
      }
      this.#waiting.push(member);
      this.#poll();
      member.vmm.status.then(() => {
        const index = this.#waiting.indexOf(member);
        if (index < 0) return; // taken: its domain's run watches it now
        this.#waiting.splice(index, 1);
        member.vmm.kill(); // closes the socket
        const log = join(member.vmm.slot, "pool.log");
        const tail = (() => {
          try {
            return Deno.readTextFileSync(log).trim().split("\n").slice(-5).join(" | ");
          } catch {
            return "";
          }
        })();
        this.#log(
          `pooled VMM pid ${member.vmm.pid} exited while waiting${tail ? `: ${tail}` : ""}`,
        );
        Deno.remove(member.vmm.slot, { recursive: true }).catch(() => {});
        // One that died loading would die again: no start-and-die loop.
        if (!member.ready) {
          this.#log("VMM pool stopped: a pooled VMM died before it was ready");
          this.#stopped = true;
        }
        this.#fill();
      });
    }).catch((error) => {
      this.#log(`cannot start a pooled VMM: ${(error as Error).message}`);
      this.#stopped = true; // no retry loop on a host that cannot
    }).finally(() => {
      this.#starting--;
      this.#fill();
    });
  }

  /** Watches loading members for their ready message (one byte), without blocking. */
  #poll(): void {
    if (this.#poller !== undefined) return;
    this.#poller = setInterval(() => {
      const loading = this.#waiting.filter((member) => !member.ready);
      for (const member of loading) {
        if (!pollReadable(member.socket, 0)) continue;
        try {
          const message = receiveFds(member.socket, 16, 0);
          // An end of file: the VMM died loading; its status says so.
          if (message.bytes.length > 0) {
            member.ready = true;
            // For people and tests: which pooled VMMs a start would take now.
            Deno.writeTextFileSync(join(member.vmm.slot, "ready"), "");
          }
        } catch {
          // read on the next round
        }
      }
      if (loading.some((member) => member.ready)) this.#fill();
      if (loading.length === 0) {
        clearInterval(this.#poller);
        this.#poller = undefined;
      }
    }, READY_POLL_MS);
  }

  async #spawn(): Promise<Member> {
    const slot = join(this.dir, `${Date.now().toString(36)}-${this.#counter++}`);
    Deno.mkdirSync(slot, { mode: 0o700 });
    const jailRoot = join(slot, "root");
    Deno.mkdirSync(jailRoot, { mode: 0o755 });
    const command = selfCommand();
    const binds = await jailBinds(
      command,
      slot,
      join(slot, "pool.log"),
      command.length > 1 ? SOURCE_ROOT : undefined,
    );
    const procs = this.#poolCgroup();
    if (procs.length === 0) throw new Error("the pool has no cgroup to start its VMMs in");
    const prefix = pooledLauncherPrefix(
      { root: jailRoot, readOnly: binds.readOnly, readWrite: [] },
      vmmUser(),
      procs,
    );
    const [daemonEnd, vmmEnd] = socketPair();
    let spawned;
    try {
      setInheritable(vmmEnd);
      spawned = spawnDetached(
        [...prefix, ...command, "vmm", "--pool-socket", String(vmmEnd)],
        join(slot, "pool.log"),
      );
    } finally {
      closeFd(vmmEnd);
    }
    let pid: number;
    let startTime: number | undefined;
    try {
      pid = await childPid(spawned.pid);
      startTime = processStartTime(pid);
      if (startTime === undefined) throw new Error(`pooled VMM ${pid} ended as it started`);
      await Deno.writeTextFile(
        join(slot, "pooled.json"),
        JSON.stringify({ pid, startTime, launcherPid: spawned.pid }) + "\n",
      );
    } catch (error) {
      // Not a member yet: nothing else would ever kill it or close the daemon's end. The
      // VMM (pid 1 of its namespace) does not die with the reaper: kill it first.
      for (const child of childrenOf(spawned.pid)) signalProcess(child, "SIGKILL");
      signalProcess(spawned.pid, "SIGKILL");
      closeFd(daemonEnd);
      await spawned.status.catch(() => {});
      await Deno.remove(slot, { recursive: true }).catch(() => {});
      throw error;
    }
    const known = startTime;
    const generic = new Set(binds.readOnly);
    // Once handed (or killed) the socket is closed, once: its number may be reused after.
    let handed = false;
    const closeSocket = () => {
      if (!handed) closeFd(daemonEnd);
      handed = true;
    };
    const vmm: PooledVmm = {
      pid,
      launcherPid: spawned.pid,
      status: spawned.status,
      slot,
      kill: () => {
        if (processStartTime(pid) === known) signalProcess(pid, "SIGKILL");
        closeSocket();
      },
      hand: async (handOver) => {
        if (handed) throw new Error(`Pooled VMM ${pid} was already handed a domain`);
        try {
          // For sweepSlots: a taken VMM's slot (its jail root) stays while it runs.
          Deno.writeTextFileSync(join(slot, "taken"), "");
          await handTo(pid, known, spawned.pid, jailRoot, generic, daemonEnd, handOver);
        } catch (error) {
          if (processStartTime(pid) === known) signalProcess(pid, "SIGKILL");
          throw error;
        } finally {
          closeSocket();
        }
      },
    };
    return { vmm, socket: daemonEnd, ready: false };
  }
}

/**
 * Gives the pooled VMM `pid` (whose jail is rooted at `jailRoot` and already holds the
 * `generic` paths) its domain: cgroups, binds, descriptors, then the order.
 */
async function handTo(
  pid: number,
  startTime: number,
  launcherPid: number,
  jailRoot: string,
  generic: ReadonlySet<string>,
  socket: number,
  { plan, descriptors, seccomp, configPath }: PoolHandOver,
): Promise<void> {
  if (plan.descriptors.length > MAX_ORDER_FDS) {
    throw new Error(`${plan.descriptors.length} descriptors do not fit in one order`);
  }
  // Each step acts on a pid: make sure it is still the VMM's (not reused) right before it.
  const check = () => {
    if (processStartTime(pid) !== startTime) throw new Error(`Pooled VMM ${pid} has ended`);
  };
  check();
  // The reaper too: it is the VMM's parent and, in the launcher, enters the groups first.
  for (const procs of plan.cgroupProcs) {
    for (const each of [launcherPid, pid]) Deno.writeTextFileSync(procs, `${each}`);
  }
  const grant = grantCommand(pid, jailRoot, {
    readOnly: plan.jail.readOnly.filter((path) => !generic.has(path)),
    readWrite: plan.jail.readWrite,
    statOnly: plan.jail.statOnly,
  });
  const grantRun = new Deno.Command(grant[0], {
    args: grant.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
  check();
  const result = await grantRun.output();
  if (!result.success) {
    throw new Error(
      `Cannot give pooled VMM ${pid} its files: ${new TextDecoder().decode(result.stderr).trim()}`,
    );
  }
  check();
  const fds: number[] = [];
  try {
    for (const open of plan.descriptors) {
      fds.push(openFile(open.path, (open.write ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    }
    // The table's numbers are the launcher's (3, 4...): in order, the indexes of `fds` + 3.
    sendFds(socket, encodePoolOrder({ config: configPath, seccomp, descriptors }), fds);
  } finally {
    fds.forEach(closeFd);
  }
}

/**
 * Clears the slots a previous daemon left in `dir` (run before this pool starts any):
 * keeps those of taken VMMs still running (their jail root; the domain's run removes it at
 * its end), kills the VMMs still waiting or loading (they would exit at the end of their
 * socket, but only once loaded, and nothing would remove their slot) and removes the rest.
 */
export function sweepSlots(dir: string): void {
  for (const entry of Deno.readDirSync(dir)) {
    const slot = join(dir, entry.name);
    let pid: number | undefined;
    try {
      const record = JSON.parse(Deno.readTextFileSync(join(slot, "pooled.json")));
      if (typeof record.pid === "number" && processStartTime(record.pid) === record.startTime) {
        pid = record.pid;
      }
    } catch {
      // no record: a slot whose VMM never started
    }
    if (pid !== undefined) {
      let taken = true;
      try {
        Deno.statSync(join(slot, "taken"));
      } catch {
        taken = false;
      }
      if (taken) continue;
      signalProcess(pid, "SIGKILL");
    }
    Deno.removeSync(slot, { recursive: true });
  }
}

/** The children of process `pid` (from /proc), none when it has gone. */
function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter((word) => word !== "").map(Number);
  } catch {
    return [];
  }
}

let current: VmmPool | undefined;

/** Makes `pool` the one `takePooledVmm` takes from (the daemon's; undefined for none). */
export function setVmmPool(pool: VmmPool | undefined): void {
  current = pool;
}

/**
 * A pre-started VMM for one domain, or undefined (no pool, or none waiting): the call for
 * any path that starts a jailed VMM (boots and migrations' receivers today; a restore could
 * take one the same way).
 */
export function takePooledVmm(): PooledVmm | undefined {
  return current?.take();
}
