/**
 * What a VMM reports about its running machine (GET /vm/stats on its control socket):
 * CPU time per vCPU, memory, and counters per disk and NIC, keyed by device name. The
 * daemon passes it on unchanged (GET /v1/domains/{name}/stats), so the API types
 * re-export these.
 *
 * @module
 */

import type { DomainState } from "../common/enums.ts";

/** One vCPU's CPU time. */
export interface VcpuStats {
  index: number;
  /**
   * User plus system CPU time of the vCPU's thread, nanoseconds, over every boot of the
   * VMM. Absent when not known: a vCPU run off-thread (every vCPU after the first,
   * unless DENOVISOR_VCPU_WORKERS=all) has no thread of its own (vmm/vcpu_cpu_time.ts).
   */
  cpuTimeNs?: number;
}

/** One disk's counters since the machine was built. */
export interface DiskStats {
  name: string;
  path: string;
  readRequests: number;
  writeRequests: number;
  readBytes: number;
  writeBytes: number;
  flushes: number;
  errors: number;
  /** Times the disk's rate limiter held a request back (0 without a limit). */
  throttled: number;
}

/** One NIC's counters since the machine was built. */
export interface NicStats {
  name: string;
  tap: string;
  mac: string;
  rxFrames: number;
  txFrames: number;
  rxBytes: number;
  txBytes: number;
  rxDropped: number;
}

/** A running domain's figures. */
export interface DomainStats {
  name: string;
  state: DomainState;
  vcpus: VcpuStats[];
  memory: {
    /** Guest RAM as configured. */
    guestBytes: number;
    /** Guest RAM minus what the balloon holds. */
    availableBytes: number;
    balloonBytes: number;
    /** Resident set of the VMM process. */
    rssBytes: number;
  };
  disks: DiskStats[];
  nics: NicStats[];
  /**
   * The VMM's cgroup (filled in by the daemon, which made it: manager/sandbox/cgroup.ts),
   * when the domain has one.
   */
  cgroup?: {
    memoryBytes: number;
    /** Absent when unlimited. */
    memoryLimitBytes?: number;
    /** How many times the kernel's OOM killer ran in the group. */
    oomKills: number;
    /** Processes and threads. */
    pids: number;
  };
}
