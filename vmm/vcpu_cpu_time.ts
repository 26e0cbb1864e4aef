/**
 * CPU time per vCPU over every machine a VMM runs (a reboot builds a new one), as
 * `stats` and the `domain_vcpu_seconds_total` counter report it.
 *
 * Only a vCPU with a thread of its own (vCPU 0's Worker, or every vCPU with
 * DENOVISOR_VCPU_WORKERS=all) has a CPU time: that thread's, from /proc. An off-thread
 * vCPU's KVM_RUN takes whichever blocking-pool thread is free, and that thread also runs
 * other vCPUs and other blocking work, so its time would be a guess: it is reported as
 * not known (undefined) instead. A known time never goes backwards, as a counter must
 * not: a thread that has gone (its machine ended) or a failed read keeps the last value.
 *
 * @module
 */

/** What is needed of one running vCPU (see `Machine.vcpuStats`). */
export interface VcpuThreadInfo {
  id: number;
  ownThread: boolean;
  tid: number;
}

/** Reads a thread's CPU time in nanoseconds; undefined when it cannot (the thread is gone). */
export type ThreadCpuReader = (tid: number) => number | undefined;

/** Accumulates each vCPU's CPU time across machines. */
export class VcpuCpuTimes {
  readonly #read: ThreadCpuReader;
  /** Time of the machines that ended, per vCPU. */
  #carry: number[];
  /** The last value reported per vCPU; undefined while it is not known. */
  #last: Array<number | undefined>;

  constructor(vcpus: number, read: ThreadCpuReader) {
    this.#read = read;
    this.#carry = new Array(vcpus).fill(0);
    this.#last = new Array(vcpus).fill(undefined);
  }

  /**
   * Each vCPU's CPU time in nanoseconds, with `live` the current machine's vCPUs (empty
   * between machines); undefined for a vCPU that has no thread of its own.
   */
  read(live: readonly VcpuThreadInfo[]): Array<number | undefined> {
    return this.#last.map((last, index) => {
      const vcpu = live.find((v) => v.id === index);
      if (vcpu === undefined) return last;
      if (!vcpu.ownThread) return undefined;
      const thread = vcpu.tid > 0 ? this.#read(vcpu.tid) : undefined;
      const now = this.#carry[index] + (thread ?? 0);
      return this.#last[index] = Math.max(last ?? 0, now);
    });
  }

  /**
   * Closes the books of a machine that ended (call before its threads exit): its time
   * is carried over to the next machine's.
   */
  machineEnded(live: readonly VcpuThreadInfo[]): void {
    this.read(live);
    this.#carry = this.#last.map((last) => last ?? 0);
  }
}
