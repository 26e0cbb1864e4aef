/**
 * Which config a state belongs to, and whether a restore's config is that one.
 *
 * A state file records the machine part of the VMM config it was taken from (the VMM-only
 * fields — name, uuid, log file, run directory, lifecycle — are left out: a restore may
 * give the domain a new name), with paths made absolute and what the devices learned when
 * they opened filled in (a probed disk format, a NIC's MAC). A restore must give a config
 * with the same machine: vCPUs, RAM, and the same devices by id, kind and place (the
 * device plan). Disks must also be the same images (file identity, virtual size) as at
 * the save: a disk that changed since is refused unless forced, since the guest's page
 * cache and in-flight state describe the old contents.
 *
 * @module
 */

import { resolve } from "node:path";
import type { ImageFormat } from "../../common/enums.ts";
import { DenovisorError } from "../../common/errors.ts";
import { StateError, StateReader } from "../../common/persist.ts";
import { imageDeviceInode } from "../../storage/image_file.ts";
import { validateVmmConfig, VmmConfigError } from "../config_parse.ts";
import { type DevicePlan, planDevices } from "../device_plan.ts";
import type { VmmConfig, VmmMachineConfig } from "../vmm_config.ts";

/** A restore whose config or disks do not match the state (code conflict). */
export class StateMismatchError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** The VMM-only fields of a `VmmConfig`: not part of the machine a state describes. */
const VMM_ONLY_FIELDS = ["name", "uuid", "onReboot", "logFile", "runDir", "restore"] as const;

/** What the opened devices know that a config may leave out. */
export interface LearnedDeviceFacts {
  /** A disk's format, by device id (probed when the config did not say). */
  diskFormats: ReadonlyMap<string, ImageFormat>;
  /** A NIC's MAC, by device id (random at boot when the config did not say). */
  macs: ReadonlyMap<string, string>;
}

/**
 * The machine part of `config` as a state file records it: VMM-only fields dropped, paths
 * absolute, formats and MACs filled in from `learned`.
 */
export function savedMachineConfig(
  config: VmmMachineConfig,
  learned: LearnedDeviceFacts,
): Record<string, unknown> {
  const copy = structuredClone(config) as VmmMachineConfig & Record<string, unknown>;
  for (const field of VMM_ONLY_FIELDS) delete copy[field];
  const plan = planDevices(config);
  copy.disks = copy.disks.map((disk, index) => {
    const id = plan.virtio.filter((d) => d.kind === "disk")[index].id;
    const format = disk.format ?? learned.diskFormats.get(id);
    return { ...disk, path: resolve(disk.path), ...(format ? { format } : {}) };
  });
  copy.nics = copy.nics.map((nic, index) => {
    const id = plan.virtio.filter((d) => d.kind === "nic")[index].id;
    const mac = nic.mac ?? learned.macs.get(id);
    return { ...nic, ...(mac ? { mac } : {}) };
  });
  if (copy.cdroms) copy.cdroms = copy.cdroms.map((path) => resolve(path));
  if (copy.sataDisks) copy.sataDisks = copy.sataDisks.map((d) => ({ ...d, path: resolve(d.path) }));
  const boot = copy.boot;
  if (boot.kind === "linux") {
    copy.boot = { ...boot, kernel: boot.kernel === "" ? "" : resolve(boot.kernel) };
  }
  return copy;
}

/**
 * Validates the (untrusted) config of a state document as a machine config; the error
 * names the field under `document.config`. The boot files are not read on restore (the
 * kernel is in guest RAM), so only the boot kind is checked.
 */
export function parseSavedConfig(value: unknown): VmmMachineConfig {
  const reader = new StateReader(value, "document.config");
  const boot = reader.object("boot");
  const kind = boot.string("kind", 16, ["demo", "linux", "firmware"] as const);
  const record = value as Record<string, unknown>;
  const unexpected = VMM_ONLY_FIELDS.find((field) => field in record);
  if (unexpected) throw new StateError(reader.fieldPath(unexpected), "not a machine field");
  // Placeholders for the VMM-only fields the validator wants; dropped again below.
  const placeholders = {
    name: "saved",
    uuid: "00000000-0000-4000-8000-000000000000",
    onReboot: "destroy",
    logFile: "/saved.log",
    runDir: "/",
  };
  let parsed: VmmConfig;
  try {
    // A firmware boot's placeholder keeps its SATA disks and CD-ROMs valid.
    const boot = kind === "firmware" ? { kind, firmware: "/saved-firmware.bin" } : { kind: "demo" };
    parsed = validateVmmConfig({ ...record, ...placeholders, boot });
  } catch (error) {
    if (error instanceof VmmConfigError) throw new StateError("document.config", error.message);
    throw error;
  }
  const machine = structuredClone(parsed) as unknown as VmmMachineConfig & Record<string, unknown>;
  for (const field of VMM_ONLY_FIELDS) delete machine[field];
  // The saved boot is kept when it is a valid one (a reboot of the restored VM boots it).
  try {
    machine.boot = validateVmmConfig({ ...record, ...placeholders }).boot;
  } catch {
    machine.boot = kind === "firmware"
      ? { kind, firmware: String((record.boot as Record<string, unknown>).firmware ?? "") }
      : { kind: "demo" };
  }
  return machine;
}

/** The devices of a plan as "id kind place" lines, for comparison. */
function placements(plan: DevicePlan): string[] {
  return [
    ...plan.legacy.map((d) => `${d.id} ${d.kind}`),
    ...plan.virtio.map((d) => {
      const t = d.transport;
      const place = t.kind === "pci" ? `pci slot ${t.slot}` : `mmio 0x${t.base.toString(16)}`;
      const readOnly = d.kind === "disk" && d.disk.readOnly ? " read-only" : "";
      return `${d.id} ${d.kind}${readOnly} on ${place}`;
    }),
  ];
}

/**
 * Refuses a restore of `saved` (from the state) into `given` (the restore's config) unless
 * they describe the same machine; the message says what differs.
 */
export function checkConfigMatch(saved: VmmMachineConfig, given: VmmMachineConfig): void {
  const differ = (what: string, was: unknown, is: unknown) => {
    throw new StateMismatchError(
      `The state was saved with ${what} ${was}, the config has ${is}: ` +
        `restore with the config the state was saved with`,
    );
  };
  if (saved.vcpus !== given.vcpus) differ("vCPUs:", saved.vcpus, given.vcpus);
  if (saved.memoryBytes !== given.memoryBytes) {
    differ("memoryBytes", saved.memoryBytes, given.memoryBytes);
  }
  const firmware = (c: VmmMachineConfig) => c.boot.kind === "firmware" ? "firmware" : "kernel";
  if (firmware(saved) !== firmware(given)) differ("a boot by", firmware(saved), firmware(given));
  const was = placements(planDevices(saved));
  const is = placements(planDevices(given));
  const missing = was.find((line) => !is.includes(line));
  if (missing !== undefined) differ("the device", `'${missing}'`, "no such device");
  const extra = is.find((line) => !was.includes(line));
  if (extra !== undefined) differ("no device", `like '${extra}'`, "one");
}

/** A disk image's identity as the state records it. */
export interface DiskIdentity {
  /** The disk's device id. */
  id: string;
  /** The image path at the save (informational: the file identity decides). */
  path: string;
  /** st_dev and st_ino of the image file, as decimal strings. */
  device: string;
  inode: string;
  /** The virtual disk's size in bytes. */
  size: number;
}

/** The `host:disks` section's state. */
export interface DiskIdentitiesState {
  version: 1;
  disks: DiskIdentity[];
}

/**
 * Reads the identity of a disk image: its file's st_dev/st_ino (of the descriptor a jailed
 * VMM was handed for it, whose path it cannot see) and the disk's size.
 */
export function diskIdentity(id: string, path: string, size: number): DiskIdentity {
  return { id, path: resolve(path), ...imageDeviceInode(path), size };
}

/** Checks an untrusted `host:disks` state. */
export function parseDiskIdentities(value: unknown, path: string): DiskIdentity[] {
  const reader = new StateReader(value, path);
  reader.version([1]);
  return reader.array("disks", 1024, (entry, at) => {
    const disk = new StateReader(entry, at);
    return {
      id: disk.string("id", 64),
      path: disk.string("path", 4096),
      device: disk.string("device", 24),
      inode: disk.string("inode", 24),
      size: disk.integer("size", 0, Number.MAX_SAFE_INTEGER),
    };
  });
}

/**
 * Refuses disks that changed since the save (another file, another size), unless
 * `force`: the restored guest's caches describe the saved contents.
 */
export function checkDiskIdentities(
  saved: readonly DiskIdentity[],
  current: readonly DiskIdentity[],
  force: boolean,
): void {
  for (const now of current) {
    const then = saved.find((disk) => disk.id === now.id);
    if (then === undefined) {
      throw new StateMismatchError(`The state records no image for disk ${now.id}`);
    }
    if (force) continue;
    if (then.device !== now.device || then.inode !== now.inode) {
      throw new StateMismatchError(
        `Disk ${now.id}: ${now.path} is not the image the state was saved with (${then.path}); ` +
          `restore with the saved disks, or force the restore`,
      );
    }
    if (then.size !== now.size) {
      throw new StateMismatchError(
        `Disk ${now.id}: ${now.path} is ${now.size} bytes, ${then.size} at the save; ` +
          `restore with the saved disks, or force the restore`,
      );
    }
  }
}
