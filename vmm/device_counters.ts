/**
 * Disk and NIC counters of a domain, kept across the machines of one VMM process: a
 * reboot rebuilds the devices (their counters start at zero), so the counts of finished
 * machines are carried and added to the live ones.
 *
 * @module
 */

import type { DiskStats, NicStats } from "./domain_stats.ts";
import type { DeviceManager } from "./device_manager.ts";
import { diskId, nicId } from "./device_plan.ts";
import type { VmmConfig } from "./vmm_config.ts";

type DiskCounts = Omit<DiskStats, "name" | "path">;
type NicCounts = Omit<NicStats, "name" | "tap" | "mac">;

const ZERO_DISK: DiskCounts = {
  readRequests: 0,
  writeRequests: 0,
  readBytes: 0,
  writeBytes: 0,
  flushes: 0,
  errors: 0,
  throttled: 0,
};
const ZERO_NIC: NicCounts = { rxFrames: 0, txFrames: 0, rxBytes: 0, txBytes: 0, rxDropped: 0 };

function add<T extends Record<string, number>>(a: T, b: T): T {
  const sum = { ...a };
  for (const key of Object.keys(b) as (keyof T)[]) sum[key] = (a[key] + b[key]) as T[keyof T];
  return sum;
}

/** Counters over every machine this process built, by device id. */
export class DeviceCounters {
  readonly #disks: Array<{ id: string; path: string }>;
  readonly #nics: Array<{ id: string; tap: string; mac?: string }>;
  readonly #diskCarry = new Map<string, DiskCounts>();
  readonly #nicCarry = new Map<string, NicCounts>();
  #devices: DeviceManager | undefined;

  constructor(config: VmmConfig) {
    this.#disks = config.disks.map((disk, i) => ({ id: diskId(disk, i), path: disk.path }));
    this.#nics = config.nics.map((nic, i) => ({ id: nicId(nic, i), tap: nic.tap, mac: nic.mac }));
    for (const { id } of this.#disks) this.#diskCarry.set(id, { ...ZERO_DISK });
    for (const { id } of this.#nics) this.#nicCarry.set(id, { ...ZERO_NIC });
  }

  /** Follows the devices of a new machine. */
  attach(devices: DeviceManager): void {
    this.#devices = devices;
  }

  /** Adds the current machine's counts to the carried ones and stops following it. */
  detach(): void {
    for (const [id, carry] of this.#diskCarry) {
      this.#diskCarry.set(id, add(carry, this.#diskLive(id)));
    }
    for (const [id, carry] of this.#nicCarry) this.#nicCarry.set(id, add(carry, this.#nicLive(id)));
    this.#devices = undefined;
  }

  disks(): DiskStats[] {
    return this.#disks.map(({ id, path }) => ({
      name: id,
      path,
      ...add(this.#diskCarry.get(id)!, this.#diskLive(id)),
    }));
  }

  nics(): NicStats[] {
    return this.#nics.map(({ id, tap, mac }) => {
      const net = this.#devices?.nic(id);
      return {
        name: id,
        tap: net?.tapName ?? tap,
        mac: mac ?? net?.mac ?? "",
        ...add(this.#nicCarry.get(id)!, this.#nicLive(id)),
      };
    });
  }

  #diskLive(id: string): DiskCounts {
    const block = this.#devices?.disk(id);
    if (block === undefined) return ZERO_DISK;
    const s = block.stats;
    return {
      readRequests: s.reads,
      writeRequests: s.writes,
      readBytes: s.bytesRead,
      writeBytes: s.bytesWritten,
      flushes: s.flushes,
      errors: s.errors,
      throttled: s.throttled,
    };
  }

  #nicLive(id: string): NicCounts {
    const net = this.#devices?.nic(id);
    if (net === undefined) return ZERO_NIC;
    const c = net.counters;
    return {
      rxFrames: c.rxFrames,
      txFrames: c.txFrames,
      rxBytes: c.rxBytes,
      txBytes: c.txBytes,
      rxDropped: c.rxDropped,
    };
  }
}
