/**
 * What the daemon does around one VMM's start for its sandbox: the domain's cgroup, its
 * taps (./tap_setup.ts), the descriptors it is handed and its jail (./jail.ts), its user
 * (./vmm_user.ts), the launcher prefix (./launcher.ts) and the VMM's seccomp flag.
 *
 * A host that lacks a part refuses to start the domain, naming the part and the opt-out
 * (`"sandbox": false`): a VMM silently running as root would be worse than one that does
 * not start.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DenovisorError } from "../../common/errors.ts";
import { createHash } from "node:crypto";
import type { DomainDefinition } from "../api_types.ts";
import type { VmmConfig } from "../../vmm/vmm_config.ts";
import { DEFAULT_SECCOMP_MODE, type SeccompMode } from "../../vmm/sandbox/seccomp_filter.ts";
import {
  type CgroupHost,
  type CgroupLimits,
  type CgroupStats,
  detectCgroups,
  DomainCgroup,
} from "./cgroup.ts";
import { launcherPrefix, missingFeatures, type SandboxPlan, sandboxSupport } from "./launcher.ts";
import type { HandedDescriptors } from "../../common/handed_descriptors.ts";
import { jailBinds, planDescriptors } from "./jail.ts";
import { prepareTaps, releaseTaps } from "./tap_setup.ts";
import { grantRead, restoreFiles } from "./save_staging.ts";
import { vmmUser } from "./vmm_user.ts";
import { selfCommand } from "../daemon/vmm_process.ts";
import { cpuPercent, sandboxSettings } from "./sandbox_definition.ts";

/** Memory a VMM needs beyond guest RAM: the runtime, V8 heaps, one Worker per vCPU. */
export const VMM_OVERHEAD_BYTES = 512 * 1024 * 1024;
export const VMM_OVERHEAD_PER_VCPU_BYTES = 64 * 1024 * 1024;
/** An empty domain cgroup older than this has no VMM coming: a start takes a few ms. */
const STALE_GROUP_MS = 60_000;
/** Threads count as pids: the runtime's blocking pool may grow to 512 threads. */
export const VMM_PIDS_MAX = 1024;

/** The cgroup limits of a domain's VMM (`cpu` from its definition). */
export function vmmCgroupLimits(
  config: Pick<VmmConfig, "memoryBytes" | "vcpus">,
  cpu: DomainDefinition["cpu"] = {},
): CgroupLimits {
  const max = cpu.max === undefined ? undefined : cpuPercent(cpu.max);
  return {
    memoryBytes: config.memoryBytes + VMM_OVERHEAD_BYTES +
      config.vcpus * VMM_OVERHEAD_PER_VCPU_BYTES,
    pids: VMM_PIDS_MAX + config.vcpus,
    ...(cpu.weight === undefined ? {} : { cpuWeight: cpu.weight }),
    ...(max === undefined ? {} : { cpuMaxPercent: max }),
  };
}

/** One VMM's sandbox, ready to spawn. */
export interface PreparedSandbox {
  /** The config to write for the VMM (its taps resolved and bridged by the daemon). */
  config: VmmConfig;
  /** Commands run before the VMM (cgroup entry, descriptors, namespaces, jail, user). */
  prefix: string[];
  /** Arguments added to `denovisor vmm`. */
  vmmArgs: string[];
  /**
   * What the prefix applies, for a pooled VMM that gets it when a domain takes it
   * (./vmm_pool.ts); undefined with the sandbox off.
   */
  grants?: {
    plan: SandboxPlan;
    descriptors: HandedDescriptors;
    seccomp: SeccompMode;
  };
  /** Lines for the domain's log: what is on. */
  notes: string[];
  /**
   * The VMM is pid 1 of its own PID namespace, a child of the launcher the daemon spawns
   * (./launcher.ts): its host pid is that child's.
   */
  pidNamespace: boolean;
  /** Lets the VMM's user read `path` (its config, written after this). */
  shareWithVmm(path: string): void;
  /** Called once the VMM is up or has failed to start: takes back what it needed only then. */
  started(): void;
}

/** The sandbox cannot be set up on this host; the message names the feature and the opt-out. */
export class SandboxUnavailableError extends DenovisorError {
  constructor(name: string, missing: string) {
    super(
      "unavailable",
      `Cannot start domain '${name}' sandboxed: this host lacks ${missing}; ` +
        'see "denovisor check", or set "sandbox": false in its definition to run its VMM ' +
        "unconfined as root",
    );
  }
}

let cgroupHost: CgroupHost | Error | undefined;

function host(): CgroupHost | Error {
  if (cgroupHost === undefined) {
    try {
      cgroupHost = detectCgroups();
    } catch (error) {
      cgroupHost = error as Error;
    }
  }
  return cgroupHost;
}

/** The source tree, when this program runs from source (not `deno compile`d). */
const SOURCE_ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/**
 * Prepares the sandbox of `definition`'s VMM (`config` is what it would run): its cgroup,
 * its taps, the descriptors it is handed, its jail and user. Refuses (with
 * `SandboxUnavailableError`) when the host lacks a part; `"sandbox": false` skips it all.
 */
export async function prepareVmmSandbox(
  definition: DomainDefinition,
  config: VmmConfig,
): Promise<PreparedSandbox> {
  const settings = sandboxSettings(definition, DEFAULT_SECCOMP_MODE);
  if (!settings.enabled) {
    return {
      config,
      prefix: [],
      vmmArgs: ["--seccomp", "off"],
      notes: ['sandbox off ("sandbox": false): the VMM runs with the daemon\'s privileges'],
      pidNamespace: false,
      shareWithVmm: () => {},
      started: () => {},
    };
  }
  const missing = missingFeatures(await sandboxSupport());
  if (missing.length > 0) throw new SandboxUnavailableError(config.name, missing.join(", "));
  const where = host();
  if (where instanceof Error) {
    throw new SandboxUnavailableError(config.name, `cgroup limits (${where.message})`);
  }
  const user = vmmUser();
  const runDir = config.runDir;
  // Sticky and group-writable: the VMM makes its sockets, pid and end files there, and
  // cannot remove or replace the daemon's (domain.json, config.json).
  Deno.chownSync(runDir, 0, user.gid);
  Deno.chmodSync(runDir, 0o1770);
  const share = (path: string, mode: number) => {
    Deno.chownSync(path, 0, user.gid);
    Deno.chmodSync(path, mode);
  };
  share(config.logFile, 0o660);
  // Groups whose VMM ended unwatched (a daemon killed) go when a domain starts.
  DomainCgroup.sweep(where, STALE_GROUP_MS);
  let cgroupProcs: readonly string[];
  try {
    cgroupProcs = DomainCgroup.create(
      where,
      vmmCgroupName(runDir),
      vmmCgroupLimits(config, definition.cpu),
    ).procsFiles;
  } catch (error) {
    throw new SandboxUnavailableError(config.name, `cgroup limits (${(error as Error).message})`);
  }
  try {
    const ready: VmmConfig = { ...config, nics: prepareTaps(config.nics, user, runDir) };
    const { opens, table } = planDescriptors(ready);
    const restoring = restoreFiles(ready);
    const descriptorsFile = join(runDir, "descriptors.json");
    Deno.writeTextFileSync(descriptorsFile, JSON.stringify(table, null, 2) + "\n");
    share(descriptorsFile, 0o640);
    const jailRoot = join(runDir, "root");
    Deno.mkdirSync(jailRoot, { mode: 0o755 });
    const command = selfCommand();
    const binds = await jailBinds(
      command,
      runDir,
      config.logFile,
      command.length > 1 ? SOURCE_ROOT : undefined,
      restoring,
    );
    const statOnly = Object.keys(table.files).filter((path) => !binds.readOnly.includes(path));
    const plan: SandboxPlan = {
      cgroupProcs,
      descriptors: opens,
      jail: { root: jailRoot, ...binds, statOnly },
      user,
    };
    const prefix = launcherPrefix(plan);
    const group = cgroupProcs[0].replace(/\/cgroup\.procs$/, "");
    return {
      config: ready,
      prefix,
      vmmArgs: ["--seccomp", settings.seccomp, "--descriptors", descriptorsFile],
      grants: { plan, descriptors: table, seccomp: settings.seccomp },
      notes: [
        `sandbox: seccomp ${settings.seccomp}, cgroup ${group}, uid ${user.uid} gid ${user.gid} ` +
        `(${user.source}) with no capabilities, jail ${jailRoot}, own mount, PID, network, ` +
        `IPC and UTS namespaces, ${opens.length} descriptors handed over`,
      ],
      pidNamespace: true,
      shareWithVmm: (path) => share(path, 0o640),
      started: grantRead(restoring, user.gid),
    };
  } catch (error) {
    releaseVmmSandbox(runDir);
    throw error;
  }
}

/**
 * The cgroup name of the VMM whose run directory is `runDir` (`<state>/domains/<name>`):
 * the domain's name and a hash of the daemon's directory, so that two daemons on one host
 * (a farm's test hosts, a daemon and its successor during a takeover) never share one
 * domain's group, nor remove it under each other.
 */
export function vmmCgroupName(runDir: string): string {
  const daemon = createHash("sha256").update(dirname(resolve(runDir))).digest("hex");
  return `${basename(runDir)}.${daemon.slice(0, 8)}`;
}

/** `{cgroup}` with the figures of the cgroup of the VMM of `runDir`, or nothing. */
export function vmmCgroupStats(runDir: string): { cgroup?: CgroupStats } {
  const where = host();
  if (where instanceof Error) return {};
  try {
    const group = DomainCgroup.existing(where, vmmCgroupName(runDir));
    return group ? { cgroup: group.stats() } : {};
  } catch {
    return {}; // gone between the lookup and the read: the VMM ended
  }
}

/** Removes the cgroup and the taps the daemon made for the VMM of `runDir` once it has gone; best effort. */
export function releaseVmmSandbox(runDir: string): void {
  releaseTaps(runDir);
  const where = host();
  if (where instanceof Error) return;
  try {
    DomainCgroup.existing(where, vmmCgroupName(runDir))?.remove();
  } catch {
    // A group that cannot be removed now is reused by the domain's next start.
  }
}
