/**
 * Saves a paused machine to a state file and its memory file (or inline in one file).
 *
 * The state is taken at one instant: the vCPUs are paused (the caller's job) and the
 * device event loop is held for the whole save, so no device serves a queue or receives
 * a frame into guest RAM between the moment its state is read and the moment RAM is
 * written. The memory file is written first, then the state file that names it by its
 * basename (both atomically: a temporary name, fsync, rename). A state file already at
 * the path is removed first, so an old state never pairs with a new memory file; a
 * save that fails leaves neither file.
 *
 * @module
 */

import { basename, dirname, isAbsolute, resolve } from "node:path";
import type { ImageFormat } from "../../common/enums.ts";
import { DenovisorError } from "../../common/errors.ts";
import { VERSION } from "../../common/version.ts";
import { vcpuStateSupport } from "../../core/vcpu_state_support.ts";
import type { Kvm } from "../../core/kvm.ts";
import type { Machine } from "../machine.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import { diskIdentity, savedMachineConfig } from "./config_match.ts";
import { planInlineMemory, type RamSource } from "./inline_memory.ts";
import {
  devicePieces,
  DISKS_SECTION,
  firmwarePieces,
  saveKvmSections,
  saveSections,
} from "./machine_sections.ts";
import { layoutRanges, writeMemoryFile } from "./memory_file.ts";
import { untouchedPages } from "./untouched_pages.ts";
import type { StateDocument, StateSection } from "./state_document.ts";
import { writeStateFile } from "./state_file.ts";
import { PAGE_SIZE } from "./state_format.ts";

/** A save that cannot be done as asked (code invalid, or conflict for the machine's state). */
export class SaveError extends DenovisorError {}

/** Where to save. */
export interface SaveTarget {
  /** Absolute path of the state file. */
  stateFile: string;
  /** The memory file, in the state file's directory; default `<stateFile>.mem`. */
  memoryFile?: string;
  /** Guest RAM inside the state file (for a stream); no memory file. */
  inline?: boolean;
  /** Why: "save", "snapshot"... (recorded in the document). */
  purpose?: string;
}

/** What a save wrote. */
export interface SaveResult {
  stateFile: string;
  /** Absent for an inline save. */
  memoryFile?: string;
  /** The state file's size. */
  stateBytes: number;
  /** Guest RAM bytes actually written (non-zero pages), in either file. */
  memoryDataBytes: number;
}

/** A save target checked, with the memory file's default filled in (absent when inline). */
export interface ResolvedSaveTarget {
  stateFile: string;
  memoryFile?: string;
  inline: boolean;
  purpose: string;
}

/** Checks a save target and fills in the memory file's default path. */
export function resolveSaveTarget(target: SaveTarget): ResolvedSaveTarget {
  const { stateFile, inline = false, purpose = "save" } = target;
  if (!isAbsolute(stateFile)) {
    throw new SaveError("invalid", `stateFile: '${stateFile}' is not an absolute path`);
  }
  if (inline) {
    if (target.memoryFile !== undefined) {
      throw new SaveError("invalid", "memoryFile: an inline save writes no memory file; drop one");
    }
    return { stateFile: resolve(stateFile), inline, purpose };
  }
  const memoryFile = resolve(target.memoryFile ?? `${stateFile}.mem`);
  if (dirname(memoryFile) !== dirname(resolve(stateFile))) {
    throw new SaveError(
      "invalid",
      `memoryFile: ${memoryFile} must be in the state file's directory ` +
        `(${dirname(resolve(stateFile))}): the state file names it by its basename`,
    );
  }
  if (memoryFile === resolve(stateFile)) {
    throw new SaveError("invalid", "memoryFile: must not be the state file itself");
  }
  return { stateFile: resolve(stateFile), memoryFile, inline, purpose };
}

/**
 * Refuses to migrate a machine live whose disks the handover does not cover: the AHCI
 * controller's SATA disks of a firmware boot are neither claimed for the shared-storage
 * check (vmm/migration/disk_claims.ts) nor flushed and closed by the source before the
 * destination opens them. A firmware boot with virtio disks and CD-ROMs migrates.
 */
export function checkMigratable(config: VmmMachineConfig): void {
  if ((config.sataDisks?.length ?? 0) > 0) {
    throw new SaveError(
      "conflict",
      "Cannot migrate a machine with SATA disks live: their handover to the destination is " +
        "not done yet; save it and restore it on the other host, or use virtio disks",
    );
  }
}

/**
 * The sections of a paused machine, devices held: KVM, devices by id, a firmware boot's
 * platform, disk identities.
 */
export function machineSections(machine: Machine, kvm: Kvm): StateSection[] {
  const disks = [...machine.devices.entries()].flatMap(([id, entry]) =>
    entry.kind === "disk" && entry.plan.kind === "disk"
      ? [diskIdentity(id, entry.plan.disk.path, entry.device.disk.size)]
      : []
  );
  return [
    ...saveKvmSections(machine.vm, machine.vcpus, vcpuStateSupport(kvm)),
    ...saveSections(devicePieces(machine.devices.entries())),
    ...saveSections(firmwarePieces(machine.devices)),
    { ...DISKS_SECTION, version: 1, state: { version: 1, disks } },
  ];
}

/** The config a state records for `machine`, with what its devices learned. */
export function machineConfigFor(machine: Machine, config: VmmMachineConfig) {
  const diskFormats = new Map<string, ImageFormat>();
  const macs = new Map<string, string>();
  for (const [id, entry] of machine.devices.entries()) {
    if (entry.kind === "disk") {
      const format = (entry.device.disk as { format?: unknown }).format;
      if (format === "raw" || format === "qcow2") diskFormats.set(id, format);
    }
    if (entry.kind === "nic") macs.set(id, entry.device.mac);
  }
  return savedMachineConfig(config, { diskFormats, macs });
}

/**
 * Saves `machine` (every vCPU paused: the caller pauses it and decides whether it runs
 * on) to `target`. The device event loop is held until the files are written.
 */
export async function saveMachine(
  machine: Machine,
  config: VmmMachineConfig,
  kvm: Kvm,
  target: SaveTarget,
): Promise<SaveResult> {
  const { stateFile, memoryFile, inline, purpose } = resolveSaveTarget(target);
  if (!machine.isPaused) {
    throw new SaveError("conflict", "Cannot save a running machine: pause it first");
  }
  const release = machine.holdDevices();
  try {
    const sections = machineSections(machine, kvm);
    // Never-touched pages of anonymous RAM are zero: they are left out without a read.
    const sources: RamSource[] = machine.ram.memory.regions.map((region, index) => {
      const range = machine.ram.ranges[index];
      const knownZero = range?.anonymous && range.start === region.start
        ? untouchedPages(range.hostAddress, range.size)
        : undefined;
      return { guestAddress: region.start, bytes: region.bytes, knownZero };
    });
    const ranges = layoutRanges(sources);
    const fileSize = ranges.reduce((sum, range) => sum + range.size, 0);
    const document: StateDocument = {
      denovisorVersion: VERSION,
      createdAt: new Date().toISOString(),
      purpose,
      config: machineConfigFor(machine, config),
      memory: inline
        ? { storage: "inline", pageSize: PAGE_SIZE, ranges, fileSize }
        : { storage: "file", file: basename(memoryFile!), pageSize: PAGE_SIZE, ranges, fileSize },
      sections,
    };
    // An older state at this path must not end up naming the new memory file.
    await Deno.remove(stateFile).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    if (inline) {
      const stateBytes = await writeStateFile(stateFile, document, sources);
      const memoryDataBytes = planInlineMemory(sources).records
        .reduce((sum, record) => sum + record.bytes.length, 0);
      return { stateFile, stateBytes, memoryDataBytes };
    }
    const memory = await writeMemoryFile(memoryFile!, sources);
    try {
      const stateBytes = await writeStateFile(stateFile, document);
      return { stateFile, memoryFile, stateBytes, memoryDataBytes: memory.dataBytes };
    } catch (error) {
      // A memory file without its state is not a save: leave nothing behind.
      await Deno.remove(memoryFile!).catch(() => {});
      throw error;
    }
  } finally {
    release();
  }
}
