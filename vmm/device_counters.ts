/**
 * Disk and NIC counters of a domain, kept across the machines of one VMM process: a
 * reboot rebuilds the devices (their counters start at zero), so the counts of finished
 * machines are carried and added to the live ones.
 *
 * @module
 */

import type { DiskStats, NicStats } from "../manager/api_types.ts";
import { VirtioBlock } from "../devices/virtio/block.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import type { RunDevices } from "../cli/run_devices.ts";
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
};
const ZERO_NIC: NicCounts = { rxFrames: 0, txFrames: 0, rxBytes: 0, txBytes: 0, rxDropped: 0 };

function add<T extends Record<string, number>>(a: T, b: T): T {
  const sum = { ...a };
  for (const key of Object.keys(b) as (keyof T)[]) sum[key] = (a[key] + b[key]) as T[keyof T];
  return sum;
}

/** Disk names as Linux calls them: vda, vdb... */
export const diskName = (index: number) =>
  index < 26 ? `vd${String.fromCharCode(0x61 + index)}` : `disk${index}`;

/** Counters over every machine this process built. */
export class DeviceCounters {
  readonly #config: VmmConfig;
  #diskCarry: DiskCounts[];
  #nicCarry: NicCounts[];
  #blocks: VirtioBlock[] = [];
  #nets: VirtioNet[] = [];

  constructor(config: VmmConfig) {
    this.#config = config;
    this.#diskCarry = config.disks.map(() => ({ ...ZERO_DISK }));
    this.#nicCarry = config.nics.map(() => ({ ...ZERO_NIC }));
  }

  /** Follows the devices of a new machine (in config order, as buildRunDevices adds them). */
  attach(devices: RunDevices): void {
    this.#blocks = devices.attachments.flatMap(({ device }) =>
      device instanceof VirtioBlock ? [device] : []
    );
    this.#nets = devices.attachments.flatMap(({ device }) =>
      device instanceof VirtioNet ? [device] : []
    );
  }

  /** Adds the current machine's counts to the carried ones and stops following it. */
  detach(): void {
    this.#diskCarry = this.#diskCarry.map((carry, i) => add(carry, this.#diskLive(i)));
    this.#nicCarry = this.#nicCarry.map((carry, i) => add(carry, this.#nicLive(i)));
    this.#blocks = [];
    this.#nets = [];
  }

  disks(): DiskStats[] {
    return this.#config.disks.map((disk, i) => ({
      name: diskName(i),
      path: disk.path,
      ...add(this.#diskCarry[i], this.#diskLive(i)),
    }));
  }

  nics(): NicStats[] {
    return this.#config.nics.map((nic, i) => ({
      name: `net${i}`,
      tap: this.#nets[i]?.tapName ?? nic.tap,
      mac: nic.mac,
      ...add(this.#nicCarry[i], this.#nicLive(i)),
    }));
  }

  #diskLive(index: number): DiskCounts {
    const block = this.#blocks[index];
    if (block === undefined) return ZERO_DISK;
    const s = block.stats;
    return {
      readRequests: s.reads,
      writeRequests: s.writes,
      readBytes: s.bytesRead,
      writeBytes: s.bytesWritten,
      flushes: s.flushes,
      errors: s.errors,
    };
  }

  #nicLive(index: number): NicCounts {
    const net = this.#nets[index];
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
