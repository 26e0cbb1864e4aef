/**
 * The one validation of a domain definition at the edge (API, `define`, `create`, `edit`):
 * unknown fields, wrong types and impossible values are refused with a JSON-path message
 * ("disks[1].volume: expected a string, got 42"); what passes comes back normalized with
 * every default filled in, so nothing downstream needs to check or default again.
 *
 * The normalized form is itself a valid definition and validates to itself, so a client
 * may take `DomainInfo.definition`, change it and send it back. In it `memory` is a whole
 * number of MiB (a bare number means MiB, as in xl.cfg); use `definitionMemoryBytes()`.
 * The schema and its limits are documented in docs/domain.md.
 *
 * @module
 */

import type { BootDefinition, DiskDefinition, DomainDefinition } from "../api_types.ts";
import { CONSOLE_KINDS, LIFECYCLE_ACTIONS } from "../../common/enums.ts";
import { parseSize, SizeError } from "../../common/units.ts";
import { isUuid, OBJECT_NAME_PATTERN, OBJECT_NAME_RULE } from "../../common/validators.ts";
import { readFarmFields } from "../farm/farm_fields.ts";
import { readCpuField, readSandboxField } from "../sandbox/sandbox_definition.ts";
import { VIRTIO_MMIO_IRQS } from "../../core/layout.ts";
import {
  DefinitionError,
  describeValue,
  fieldPath,
  readArray,
  readBoolean,
  readChoice,
  readObject,
  readString,
} from "./definition_error.ts";
import {
  readDisk,
  readNics,
  readPath,
  readRng,
  refuseDuplicateImages,
} from "./definition_devices.ts";
import { validateAfterSchema } from "./definition_problems.ts";
import { DomainDefinition as DomainDefinitionSchema, MAX_VCPUS } from "../api_schema.ts";
import { propertyKeys } from "../../common/schema.ts";
import { checkSchema } from "../../common/schema_check.ts";

export { DefinitionError, DomainConflictError } from "./definition_error.ts";
export { type DefinitionProblem, DefinitionProblems } from "./definition_problems.ts";
export { checkConflicts } from "./conflicts.ts";

/** Domain names: also directory names under the state and runtime directories. */
export const NAME_PATTERN = OBJECT_NAME_PATTERN;
export { MAX_VCPUS };
export const MIN_MEMORY_MIB = 16;
export const DEFAULT_MEMORY_MIB = 256;
/** Linux x86 reads at most 2048 bytes of command line (COMMAND_LINE_SIZE), NUL included. */
export const MAX_CMDLINE_BYTES = 2047;
export const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1";
/** PCI bus 0 has 32 slots and the host bridge takes one. */
export const MAX_PCI_DEVICES = 31;
/** Each virtio-mmio device needs an interrupt line of its own. */
export const MAX_MMIO_DEVICES = VIRTIO_MMIO_IRQS.length;
const MIB = 1024 * 1024;

/** The definition's fields, in reading order: the schema's (manager/api_schema.ts). */
const DOMAIN_FIELDS = propertyKeys(DomainDefinitionSchema);
/** Options of `validateDefinition`. */
export interface ValidateOptions {
  /** Relative kernel, initrd and disk paths are resolved against it; without it they are refused. */
  baseDir?: string;
  /** The most memory a domain may have (default: this host's RAM). */
  hostMemoryBytes?: number;
}

/** Guest RAM of a validated definition, in bytes. */
export function definitionMemoryBytes(definition: DomainDefinition): number {
  const memory = definition.memory ?? DEFAULT_MEMORY_MIB;
  return typeof memory === "number" ? memory * MIB : parseSize(memory, "memory", "m");
}

/**
 * Validates `input` (parsed JSON, or what `parseXlCfg` made) as a domain definition and
 * returns it normalized: uuid, vCPUs, memory (MiB), cmdline, MACs, transports, lifecycle
 * actions, autostart filled in. Throws `DefinitionError` naming the bad field; with more
 * than one mistake, a `DefinitionProblems` with one "path: problem" line for each
 * (definition_problems.ts), the first line as the first mistake alone reads.
 */
export function validateDefinition(
  input: unknown,
  options: ValidateOptions = {},
): DomainDefinition {
  const structural = checkSchema(DomainDefinitionSchema, input);
  return validateAfterSchema(
    input,
    structural,
    DOMAIN_FIELDS,
    (each) => validateOnce(each, options),
  );
}

/** `validateDefinition` up to the first bad field. */
function validateOnce(input: unknown, options: ValidateOptions): DomainDefinition {
  const object = readObject(input, "", DOMAIN_FIELDS);
  const name = readString(object, "name", "");
  if (name === undefined) {
    throw new DefinitionError("name", "missing; every domain needs a name");
  }
  if (!NAME_PATTERN.test(name)) {
    throw new DefinitionError(
      "name",
      `${describeValue(name)} is not a valid name; use ${OBJECT_NAME_RULE}`,
    );
  }
  const uuid = readUuid(object);
  const vcpus = readVcpus(object);
  const memory = readMemory(object, options.hostMemoryBytes ?? hostMemoryBytes());
  if (object.boot === undefined) {
    throw new DefinitionError("boot", 'missing; give {"kernel": PATH} or {"demo": true}');
  }
  const boot = readBoot(object.boot, options.baseDir);
  const disks = (readArray(object.disks, "disks") ?? []).map((disk, index) =>
    readDisk(disk, fieldPath("disks", index), options.baseDir)
  );
  refuseDuplicateImages(disks);
  const cdroms = readCdroms(object.cdroms, boot, disks, options.baseDir);
  const nics = readNics(object.nics, uuid);
  const rng = readRng(object.rng);
  const balloon = readBoolean(object, "balloon", "") ?? false;
  const definition: DomainDefinition = {
    name,
    uuid,
    vcpus,
    memory,
    boot,
    disks,
    ...(cdroms.length === 0 ? {} : { cdroms }),
    nics,
    rng,
    balloon,
    console: readChoice(object, "console", "", CONSOLE_KINDS) ?? "serial",
    onPoweroff: readChoice(object, "onPoweroff", "", LIFECYCLE_ACTIONS) ?? "destroy",
    onReboot: readChoice(object, "onReboot", "", LIFECYCLE_ACTIONS) ?? "restart",
    onCrash: readChoice(object, "onCrash", "", LIFECYCLE_ACTIONS) ?? "destroy",
    autostart: readBoolean(object, "autostart", "") ?? false,
    ...readFarmFields(object),
    ...readSandboxField(object),
    ...readCpuField(object),
  };
  checkDeviceCount(definition);
  return definition;
}

function hostMemoryBytes(): number {
  try {
    return Deno.systemMemoryInfo().total;
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

function readUuid(object: Record<string, unknown>): string {
  const uuid = readString(object, "uuid", "");
  if (uuid === undefined) return crypto.randomUUID();
  if (!isUuid(uuid)) {
    throw new DefinitionError(
      "uuid",
      `${
        describeValue(uuid)
      } is not a UUID; write 8-4-4-4-12 hex digits or leave it out to get one`,
    );
  }
  return uuid.toLowerCase();
}

function readVcpus(object: Record<string, unknown>): number {
  const vcpus = object.vcpus;
  if (vcpus === undefined) return 1;
  if (typeof vcpus !== "number" || !Number.isInteger(vcpus)) {
    throw new DefinitionError("vcpus", `expected a whole number, got ${describeValue(vcpus)}`);
  }
  if (vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new DefinitionError("vcpus", `${vcpus} is not between 1 and ${MAX_VCPUS}`);
  }
  return vcpus;
}

function readMemory(object: Record<string, unknown>, hostBytes: number): number {
  const memory = object.memory;
  let bytes: number;
  if (memory === undefined) return DEFAULT_MEMORY_MIB;
  if (typeof memory === "number") {
    if (!Number.isInteger(memory) || memory < 0) {
      throw new DefinitionError(
        "memory",
        `expected a whole number of MiB or a size such as "512M", got ${describeValue(memory)}`,
      );
    }
    bytes = memory * MIB;
  } else if (typeof memory === "string") {
    try {
      bytes = parseSize(memory, "memory", "m");
    } catch (error) {
      if (!(error instanceof SizeError)) throw error;
      throw new DefinitionError("memory", error.reason);
    }
  } else {
    throw new DefinitionError(
      "memory",
      `expected a number of MiB or a size such as "512M", got ${describeValue(memory)}`,
    );
  }
  if (bytes % MIB !== 0) {
    throw new DefinitionError(
      "memory",
      `${describeValue(memory)} is not a whole number of MiB; round it to a multiple of 1M`,
    );
  }
  if (bytes < MIN_MEMORY_MIB * MIB) {
    throw new DefinitionError(
      "memory",
      `${bytes / MIB} MiB is below the minimum of ${MIN_MEMORY_MIB} MiB`,
    );
  }
  if (bytes > hostBytes) {
    throw new DefinitionError(
      "memory",
      `${bytes / MIB} MiB is more than this host's ${Math.floor(hostBytes / MIB)} MiB of RAM`,
    );
  }
  return bytes / MIB;
}

/** The firmware `boot.firmware: "seabios"` names. */
export const SEABIOS = "seabios";
/** Most CD-ROMs and SATA disks: the AHCI controller's ports. */
export const MAX_AHCI_DRIVES = 6;

function readBoot(value: unknown, baseDir: string | undefined): BootDefinition {
  const object = readObject(value, "boot", [
    "kernel",
    "initrd",
    "cmdline",
    "demo",
    "firmware",
    "order",
  ]);
  if (object.firmware !== undefined) return readFirmwareBoot(object, baseDir);
  if (object.order !== undefined) {
    throw new DefinitionError(
      "boot.order",
      "only with boot.firmware: a kernel boot has no boot order",
    );
  }
  if (object.demo !== undefined) {
    if (object.demo !== true) {
      throw new DefinitionError(
        "boot.demo",
        `expected true, got ${describeValue(object.demo)}; for a kernel give boot.kernel instead`,
      );
    }
    for (const key of ["kernel", "initrd", "cmdline"]) {
      if (object[key] !== undefined) {
        throw new DefinitionError(
          fieldPath("boot", key),
          "not with boot.demo; boot either the demo guest or a kernel",
        );
      }
    }
    return { demo: true };
  }
  const kernel = readString(object, "kernel", "boot");
  if (kernel === undefined) {
    throw new DefinitionError("boot.kernel", 'missing; give a kernel path or "demo": true');
  }
  const initrd = readString(object, "initrd", "boot");
  const cmdline = readString(object, "cmdline", "boot") ?? DEFAULT_CMDLINE;
  if (new TextEncoder().encode(cmdline).length > MAX_CMDLINE_BYTES || cmdline.includes("\0")) {
    throw new DefinitionError(
      "boot.cmdline",
      `must be at most ${MAX_CMDLINE_BYTES} bytes without NUL characters`,
    );
  }
  return {
    kernel: readPath(kernel, "boot.kernel", baseDir),
    ...(initrd === undefined ? {} : { initrd: readPath(initrd, "boot.initrd", baseDir) }),
    cmdline,
  };
}

/** `{"firmware": "seabios" | PATH, "order": ["disk", "cdrom"]}`. */
function readFirmwareBoot(
  object: Record<string, unknown>,
  baseDir: string | undefined,
): BootDefinition {
  for (const key of ["kernel", "initrd", "cmdline", "demo"]) {
    if (object[key] !== undefined) {
      throw new DefinitionError(
        fieldPath("boot", key),
        "not with boot.firmware; the firmware loads the OS",
      );
    }
  }
  const firmware = readString(object, "firmware", "boot")!;
  const boot: BootDefinition = {
    firmware: firmware === SEABIOS ? SEABIOS : readPath(firmware, "boot.firmware", baseDir),
  };
  const order = readArray(object.order, "boot.order");
  if (order !== undefined) {
    const kinds = order.map((entry, index) => {
      if (entry !== "disk" && entry !== "cdrom") {
        throw new DefinitionError(
          fieldPath("boot.order", index),
          `${describeValue(entry)} is not "disk" or "cdrom"`,
        );
      }
      return entry;
    });
    if (new Set(kinds).size !== kinds.length) {
      throw new DefinitionError("boot.order", "names a device class twice");
    }
    boot.order = kinds;
  }
  return boot;
}

/** CD-ROM image paths; they and the SATA disks share the AHCI controller's ports. */
function readCdroms(
  value: unknown,
  boot: BootDefinition,
  disks: readonly DiskDefinition[],
  baseDir: string | undefined,
): string[] {
  const cdroms = (readArray(value, "cdroms") ?? []).map((entry, index) => {
    if (typeof entry !== "string") {
      throw new DefinitionError(
        fieldPath("cdroms", index),
        `expected an ISO image path, got ${describeValue(entry)}`,
      );
    }
    return readPath(entry, fieldPath("cdroms", index), baseDir);
  });
  const sata = disks.filter((disk) => disk.bus === "sata").length;
  if ((cdroms.length > 0 || sata > 0) && !("firmware" in boot)) {
    throw new DefinitionError(
      cdroms.length > 0 ? "cdroms" : "disks",
      'CD-ROMs and SATA disks need a firmware boot; give boot {"firmware": "seabios"}',
    );
  }
  if (cdroms.length + sata > MAX_AHCI_DRIVES) {
    throw new DefinitionError(
      "cdroms",
      `CD-ROMs and SATA disks share ${MAX_AHCI_DRIVES} AHCI ports`,
    );
  }
  return cdroms;
}

function checkDeviceCount(definition: DomainDefinition): void {
  const devices = [...definition.disks!.filter((disk) => disk.bus !== "sata"), ...definition.nics!];
  const mmio = devices.filter((device) => device.transport === "mmio").length;
  const pci = devices.length - mmio + (definition.rng ? 1 : 0) + (definition.balloon ? 1 : 0) +
    (definition.console === "virtio" ? 1 : 0);
  if (mmio > MAX_MMIO_DEVICES) {
    throw new DefinitionError(
      "",
      `${mmio} devices on transport mmio, but at most ${MAX_MMIO_DEVICES} fit (one interrupt line each); put some on pci`,
    );
  }
  if (pci > MAX_PCI_DEVICES) {
    throw new DefinitionError(
      "",
      `${pci} devices on transport pci (disks, NICs, rng, balloon, console), but bus 0 has ${MAX_PCI_DEVICES} free slots; put some on mmio or remove some`,
    );
  }
}
