/**
 * What the daemon does around one VMM's start for its sandbox: the domain's cgroup, the
 * launcher prefix (./launcher.ts) and the VMM's seccomp flag, with a line for the
 * domain's log about each part the host cannot provide.
 *
 * A missing feature degrades with a warning rather than refusing the start: a VMM must
 * not stop starting on a host (a CI container without CAP_SYS_ADMIN, a host whose cgroup
 * tree is not delegated) where it ran before the sandbox existed.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { createHash } from "node:crypto";
import type { DomainDefinition } from "../api_types.ts";
import type { VmmConfig } from "../../vmm/vmm_config.ts";
import { DEFAULT_SECCOMP_MODE } from "../../vmm/sandbox/seccomp_filter.ts";
import {
  type CgroupHost,
  type CgroupLimits,
  type CgroupStats,
  detectCgroups,
  DomainCgroup,
} from "./cgroup.ts";
import { launcherPrefix, sandboxSupport, VMM_CAPABILITIES } from "./launcher.ts";
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
  /** Commands run before the VMM (cgroup entry, namespaces, privilege drop). */
  prefix: string[];
  /** Arguments added to `denovisor vmm`. */
  vmmArgs: string[];
  /** Lines for the domain's log: what is on, and what this host lacks. */
  notes: string[];
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

/** Prepares the sandbox of `definition`'s VMM (`config` is what it will run). */
export async function prepareVmmSandbox(
  definition: DomainDefinition,
  config: VmmConfig,
): Promise<PreparedSandbox> {
  const settings = sandboxSettings(definition, DEFAULT_SECCOMP_MODE);
  if (!settings.enabled) {
    return {
      prefix: [],
      vmmArgs: ["--seccomp", "off"],
      notes: ['sandbox off ("sandbox": false): the VMM runs with the daemon\'s privileges'],
    };
  }
  const notes: string[] = [];
  let cgroupProcs: readonly string[] = [];
  const where = host();
  if (where instanceof Error) {
    notes.push(`sandbox: no cgroup limits (${where.message})`);
  } else {
    // Groups whose VMM ended unwatched (a daemon killed) go when a domain starts.
    DomainCgroup.sweep(where, STALE_GROUP_MS);
    try {
      cgroupProcs = DomainCgroup.create(
        where,
        vmmCgroupName(config.runDir),
        vmmCgroupLimits(config, definition.cpu),
      )
        .procsFiles;
    } catch (error) {
      notes.push(`sandbox: no cgroup limits (${(error as Error).message})`);
    }
  }
  const support = await sandboxSupport();
  if (!support.namespaces) notes.push("sandbox: no IPC/UTS namespaces (unshare is refused here)");
  if (!support.setpriv) {
    notes.push("sandbox: capabilities not dropped (setpriv is missing or refused here)");
  }
  const prefix = launcherPrefix({
    cgroupProcs,
    namespaces: support.namespaces,
    capabilities: support.setpriv ? VMM_CAPABILITIES : undefined,
  });
  notes.push(
    `sandbox: seccomp ${settings.seccomp}` +
      (cgroupProcs.length > 0 ? `, cgroup ${cgroupProcs[0].replace(/\/cgroup\.procs$/, "")}` : "") +
      (support.setpriv ? `, capabilities ${VMM_CAPABILITIES.join(",")}, no_new_privs` : ""),
  );
  return { prefix, vmmArgs: ["--seccomp", settings.seccomp], notes };
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

/** Removes the cgroup of the VMM of `runDir` once it has gone; best effort. */
export function releaseVmmSandbox(runDir: string): void {
  const where = host();
  if (where instanceof Error) return;
  try {
    DomainCgroup.existing(where, vmmCgroupName(runDir))?.remove();
  } catch {
    // A group that cannot be removed now is reused by the domain's next start.
  }
}
