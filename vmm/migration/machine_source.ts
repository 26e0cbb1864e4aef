/**
 * A running `Machine` as a migration source: KVM's dirty log ORed with the pages the
 * VMM's devices wrote (every device runs on the main thread over `machine.ram.memory`,
 * which marks them while tracking, plus the virtio used rings, written through views
 * taken before tracking began), pause with the device loop held (no device touches
 * RAM or its state until resume), the state document as a save makes it, and the disk
 * handover: flushed and closed before the destination opens them, reopened if the
 * migration does not happen.
 *
 * @module
 */

import { VERSION } from "../../common/version.ts";
import {
  DeviceDirtyBitmap,
  emptyBitmaps,
  KvmDirtyLog,
  orBitmaps,
  type RangeBitmap,
} from "../../core/dirty_log.ts";
import type { Kvm } from "../../core/kvm.ts";
import type { CpuidEntry } from "../../ffi/kvm/cpuid.ts";
import { usedRingBytes } from "../../devices/virtio/split_ring.ts";
import { openImage } from "../../storage/image.ts";
import { releaseImageLocks } from "../../storage/image_lock.ts";
import { handedFile } from "../../common/handed_descriptors.ts";
import { closeFd } from "../../ffi/libc.ts";
import type { Machine } from "../machine.ts";
import { layoutRanges } from "../snapshot/memory_file.ts";
import { checkMigratable, machineConfigFor, machineSections } from "../snapshot/save_machine.ts";
import type { StateDocument } from "../snapshot/state_document.ts";
import { PAGE_SIZE } from "../snapshot/state_format.ts";
import { untouchedPages } from "../snapshot/untouched_pages.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import type { RamView } from "./page_sender.ts";
import type { MigrationSource } from "./sender.ts";
import { VcpuThrottle } from "./vcpu_throttle.ts";

/** The migration source over one machine of this VMM. */
export class MachineMigrationSource implements MigrationSource {
  readonly ram: readonly RamView[];
  readonly #machine: Machine;
  readonly #config: VmmMachineConfig;
  readonly #kvm: Kvm;
  readonly #kvmLog: KvmDirtyLog;
  readonly #deviceLog: DeviceDirtyBitmap;
  readonly #throttle: VcpuThrottle;
  #releaseDevices: (() => void) | null = null;
  #wasPaused = false;

  constructor(machine: Machine, config: VmmMachineConfig, kvm: Kvm) {
    checkMigratable(config);
    this.#machine = machine;
    this.#config = config;
    this.#kvm = kvm;
    this.ram = machine.ram.memory.regions.map((region) => ({
      guestAddress: region.start,
      bytes: region.bytes,
    }));
    this.#kvmLog = new KvmDirtyLog(machine.vm, machine.ram.ranges);
    this.#deviceLog = new DeviceDirtyBitmap(machine.ram.ranges);
    this.#throttle = new VcpuThrottle(machine);
  }

  /**
   * Auto-converge: the vCPUs run only (100 - percent) % of the time. A machine the
   * operator had paused stays paused (the throttle would otherwise resume it).
   */
  throttle(percent: number): void {
    if (percent > 0 && this.#throttle.percent === 0 && this.#machine.isPaused) return;
    this.#throttle.set(percent);
  }

  /** The CPUID table the first vCPU was given (what the guest has seen), for START. */
  cpuid(): CpuidEntry[] {
    return this.#machine.vcpus[0].cpuidSet();
  }

  startDirtyLog(): void {
    // Devices first: a page a device writes between the two is then logged either way.
    this.#machine.ram.memory.trackWrites(this.#deviceLog);
    this.#kvmLog.start();
  }

  /**
   * Round 0: every page but the never-touched ones of anonymous RAM, which are zero and
   * would each cost a fault to read (a 256 MiB guest using 4 MiB: 65,000 faults). Logging
   * is on by now, so a page first written after the scan is in the next round's set.
   */
  firstPass(): RangeBitmap[] {
    const ranges = this.#machine.ram.ranges;
    const bitmaps = emptyBitmaps(ranges);
    bitmaps.forEach((bitmap, index) => {
      const range = ranges[index];
      const untouched = range.anonymous ? untouchedPages(range.hostAddress, range.size) : undefined;
      for (let page = 0; page < bitmap.pages; page++) {
        if (untouched?.[page] !== 1) bitmap.bits[page >>> 5] |= 1 << (page & 31);
      }
    });
    return bitmaps;
  }

  takeDirty(): RangeBitmap[] {
    this.#markUsedRings();
    return orBitmaps(this.#kvmLog.fetch(), this.#deviceLog.take());
  }

  /**
   * Marks every running virtio queue's used ring (a few pages): a queue writes it through
   * a view taken once when the driver enabled it, before tracking began, so the tracker
   * never sees those writes.
   */
  #markUsedRings(): void {
    for (const [, entry] of this.#machine.devices.entries()) {
      if (!("transport" in entry)) continue;
      for (const queue of entry.transport.state.save().queues) {
        if (queue.queue === null) continue; // not running: nothing written since
        this.#deviceLog.mark(Number(BigInt(queue.usedRing)), usedRingBytes(queue.size));
      }
    }
  }

  stopDirtyLog(): void {
    this.#kvmLog.stop();
    this.#machine.ram.memory.trackWrites(null);
  }

  async pause(): Promise<void> {
    await this.#throttle.stop(); // its own pause would otherwise pass for the operator's
    this.#wasPaused = this.#machine.isPaused;
    await this.#machine.pause();
    this.#releaseDevices ??= this.#machine.holdDevices();
  }

  resume(): Promise<void> {
    this.#releaseDevices?.();
    this.#releaseDevices = null;
    // A machine the operator had paused before migrating stays paused.
    if (!this.#wasPaused) this.#machine.resume();
    return Promise.resolve();
  }

  saveState(): Promise<unknown> {
    const sources = this.ram.map((r) => ({ guestAddress: r.guestAddress, bytes: r.bytes }));
    const ranges = layoutRanges(sources);
    const document: StateDocument = {
      denovisorVersion: VERSION,
      createdAt: new Date().toISOString(),
      purpose: "migration",
      config: machineConfigFor(this.#machine, this.#config),
      // The pages went as MEMORY frames; the document only describes the layout.
      memory: {
        storage: "inline",
        pageSize: PAGE_SIZE,
        ranges,
        fileSize: ranges.reduce((sum, range) => sum + range.size, 0),
      },
      sections: machineSections(this.#machine, this.#kvm),
    };
    return Promise.resolve(document);
  }

  releaseDisks(): Promise<void> {
    for (const [, entry] of this.#machine.devices.entries()) {
      if (entry.kind !== "disk") continue;
      entry.device.disk.flush();
      entry.device.disk.close(); // qcow2 metadata written, image lock released
      // ...unless the image came from a descriptor the sandbox's launcher handed this VMM:
      // that open file description (and its locks) lives on; let go of them explicitly.
      if (entry.plan.kind !== "disk") continue;
      const handed = handedFile(entry.plan.disk.path);
      if (handed === undefined) continue;
      try {
        releaseImageLocks(handed);
      } finally {
        closeFd(handed);
      }
    }
    return Promise.resolve();
  }

  reacquireDisks(): Promise<void> {
    for (const [, entry] of this.#machine.devices.entries()) {
      if (entry.kind !== "disk" || entry.plan.kind !== "disk") continue;
      const spec = entry.plan.disk;
      entry.device.replaceDisk(
        openImage(spec.path, { readOnly: spec.readOnly, format: spec.format }),
      );
    }
    return Promise.resolve();
  }
}
