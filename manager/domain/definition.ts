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

import { isAbsolute, resolve } from "node:path";
import type {
  BootDefinition,
  DiskDefinition,
  DomainDefinition,
  LifecycleAction,
  NicDefinition,
  Transport,
} from "../api_types.ts";
import { parseSize } from "../../cli/units.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { parseRateLimit } from "../../devices/virtio/rate_limit_spec.ts";
import { RateLimiterConfigError } from "../../devices/virtio/rate_limiter.ts";
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
import { generateMac, macProblem } from "./mac.ts";

export { DefinitionError, DomainConflictError } from "./definition_error.ts";
export { checkConflicts } from "./conflicts.ts";

/** Domain names: also directory names under the state and runtime directories. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const MAX_VCPUS = 254;
export const MIN_MEMORY_MIB = 16;
export const DEFAULT_MEMORY_MIB = 256;
/** Linux x86 reads at most 2048 bytes of command line (COMMAND_LINE_SIZE), NUL included. */
export const MAX_CMDLINE_BYTES = 2047;
export const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1";
/** PCI bus 0 has 32 slots and the host bridge takes one. */
export const MAX_PCI_DEVICES = 31;
/** Each virtio-mmio device needs an interrupt line of its own. */
export const MAX_MMIO_DEVICES = VIRTIO_MMIO_IRQS.length;
/** virtio-blk serials are 20 bytes. */
const MAX_SERIAL_LENGTH = 20;
const INTERFACE_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MIB = 1024 * 1024;

const LIFECYCLE_ACTIONS: readonly LifecycleAction[] = [
  "destroy",
  "restart",
  "preserve",
  "rename-restart",
];
const TRANSPORTS: readonly Transport[] = ["pci", "mmio"];
const DOMAIN_FIELDS = [
  "name",
  "uuid",
  "vcpus",
  "memory",
  "boot",
  "disks",
  "nics",
  "rng",
  "balloon",
  "onPoweroff",
  "onReboot",
  "onCrash",
  "autostart",
] as const;
const DISK_FIELDS = [
  "pool",
  "volume",
  "path",
  "format",
  "readOnly",
  "serial",
  "transport",
  "rateLimit",
] as const;
const NIC_FIELDS = ["tap", "bridge", "mac", "transport", "rateLimit"] as const;

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
 * actions, autostart filled in. Throws `DefinitionError` naming the first bad field.
 */
export function validateDefinition(
  input: unknown,
  options: ValidateOptions = {},
): DomainDefinition {
  const object = readObject(input, "", DOMAIN_FIELDS);
  const name = readString(object, "name", "");
  if (name === undefined) {
    throw new DefinitionError("name", "missing; every domain needs a name");
  }
  if (!NAME_PATTERN.test(name)) {
    throw new DefinitionError(
      "name",
      `${
        describeValue(name)
      } is not a valid name; use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
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
    nics,
    rng,
    balloon,
    onPoweroff: readChoice(object, "onPoweroff", "", LIFECYCLE_ACTIONS) ?? "destroy",
    onReboot: readChoice(object, "onReboot", "", LIFECYCLE_ACTIONS) ?? "restart",
    onCrash: readChoice(object, "onCrash", "", LIFECYCLE_ACTIONS) ?? "destroy",
    autostart: readBoolean(object, "autostart", "") ?? false,
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
  if (!UUID_PATTERN.test(uuid)) {
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
      if (!(error instanceof UsageError)) throw error;
      throw new DefinitionError("memory", error.message.replace(/^memory: /, ""));
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

/** An absolute, normalized host path (relative ones resolved against `baseDir`). */
function readPath(value: string, path: string, baseDir: string | undefined): string {
  if (value === "" || value.includes("\0")) {
    throw new DefinitionError(path, `${describeValue(value)} is not a file path`);
  }
  if (isAbsolute(value)) return resolve(value);
  if (baseDir === undefined) {
    throw new DefinitionError(path, `"${value}" is not an absolute path; write the full path`);
  }
  return resolve(baseDir, value);
}

function readBoot(value: unknown, baseDir: string | undefined): BootDefinition {
  const object = readObject(value, "boot", ["kernel", "initrd", "cmdline", "demo"]);
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
  const boot: BootDefinition = { kernel: readPath(kernel, "boot.kernel", baseDir), cmdline };
  if (initrd !== undefined) boot.initrd = readPath(initrd, "boot.initrd", baseDir);
  return boot;
}

function readRateLimit(object: Record<string, unknown>, path: string): string | undefined {
  const spec = readString(object, "rateLimit", path);
  if (spec === undefined) return undefined;
  try {
    parseRateLimit(spec);
  } catch (error) {
    if (!(error instanceof RateLimiterConfigError)) throw error;
    throw new DefinitionError(fieldPath(path, "rateLimit"), error.message);
  }
  return spec.trim();
}

/** Pool and volume names become file names in pools: no '/', no leading '.'. */
function readStorageName(object: Record<string, unknown>, key: string, path: string) {
  const name = readString(object, key, path);
  if (name !== undefined && !/^[^/.\0][^/\0]{0,254}$/.test(name)) {
    throw new DefinitionError(
      fieldPath(path, key),
      `${
        describeValue(name)
      } is not a ${key} name (1-255 characters, no '/', not starting with '.')`,
    );
  }
  return name;
}

function readDisk(value: unknown, path: string, baseDir: string | undefined): DiskDefinition {
  const object = readObject(value, path, DISK_FIELDS);
  const pool = readStorageName(object, "pool", path);
  const volume = readStorageName(object, "volume", path);
  const file = readString(object, "path", path);
  if (volume !== undefined && file !== undefined) {
    throw new DefinitionError(path, "give either volume (with pool) or path, not both");
  }
  if (volume === undefined && file === undefined) {
    throw new DefinitionError(path, "give volume (with pool) or path");
  }
  if (pool !== undefined && volume === undefined) {
    throw new DefinitionError(fieldPath(path, "pool"), "only with volume; a path needs no pool");
  }
  const disk: DiskDefinition = volume !== undefined
    ? { pool: pool ?? "default", volume }
    : { path: readPath(file!, fieldPath(path, "path"), baseDir) };
  const format = readChoice(object, "format", path, ["raw", "qcow2"] as const);
  if (format !== undefined) disk.format = format;
  disk.readOnly = readBoolean(object, "readOnly", path) ?? false;
  const serial = readString(object, "serial", path);
  if (serial !== undefined) {
    if (serial.length > MAX_SERIAL_LENGTH || !/^[\x20-\x7e]*$/.test(serial)) {
      throw new DefinitionError(
        fieldPath(path, "serial"),
        `${describeValue(serial)} must be at most ${MAX_SERIAL_LENGTH} printable ASCII characters`,
      );
    }
    disk.serial = serial;
  }
  disk.transport = readChoice(object, "transport", path, TRANSPORTS) ?? "pci";
  const rateLimit = readRateLimit(object, path);
  if (rateLimit !== undefined) disk.rateLimit = rateLimit;
  return disk;
}

function refuseDuplicateImages(disks: DiskDefinition[]): void {
  const seen = new Map<string, number>();
  disks.forEach((disk, index) => {
    const key = disk.path ?? `${disk.pool}/${disk.volume}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new DefinitionError(
        fieldPath(fieldPath("disks", index), disk.path ? "path" : "volume"),
        `the same image as disks[${earlier}]; a domain may use an image once`,
      );
    }
    seen.set(key, index);
  });
}

function readNic(value: unknown, path: string): NicDefinition {
  const object = readObject(value, path, NIC_FIELDS);
  const nic: NicDefinition = {};
  const tap = readString(object, "tap", path) ?? "auto";
  if (tap !== "auto" && (!INTERFACE_PATTERN.test(tap) || tap === "." || tap === "..")) {
    throw new DefinitionError(
      fieldPath(path, "tap"),
      `${
        describeValue(tap)
      } is not an interface name (1-15 letters, digits, '_', '.', '-') or "auto"`,
    );
  }
  nic.tap = tap;
  const bridge = readString(object, "bridge", path);
  if (bridge !== undefined) {
    if (!INTERFACE_PATTERN.test(bridge)) {
      throw new DefinitionError(
        fieldPath(path, "bridge"),
        `${describeValue(bridge)} is not an interface name (1-15 letters, digits, '_', '.', '-')`,
      );
    }
    nic.bridge = bridge;
  }
  const mac = readString(object, "mac", path);
  if (mac !== undefined) {
    const problem = macProblem(mac);
    if (problem) throw new DefinitionError(fieldPath(path, "mac"), problem);
    nic.mac = mac.toLowerCase();
  }
  nic.transport = readChoice(object, "transport", path, TRANSPORTS) ?? "pci";
  const rateLimit = readRateLimit(object, path);
  if (rateLimit !== undefined) nic.rateLimit = rateLimit;
  return nic;
}

function readNics(value: unknown, uuid: string): NicDefinition[] {
  const nics = (readArray(value, "nics") ?? []).map((nic, index) =>
    readNic(nic, fieldPath("nics", index))
  );
  const given = new Map<string, number>();
  const taps = new Map<string, number>();
  nics.forEach((nic, index) => {
    if (nic.mac !== undefined) {
      const earlier = given.get(nic.mac);
      if (earlier !== undefined) {
        throw new DefinitionError(`nics[${index}].mac`, `${nic.mac} is already nics[${earlier}]'s`);
      }
      given.set(nic.mac, index);
    }
    if (nic.tap !== "auto") {
      const earlier = taps.get(nic.tap!);
      if (earlier !== undefined) {
        throw new DefinitionError(`nics[${index}].tap`, `${nic.tap} is already nics[${earlier}]'s`);
      }
      taps.set(nic.tap!, index);
    }
  });
  const taken = new Set(given.keys());
  for (const [index, nic] of nics.entries()) {
    if (nic.mac === undefined) {
      nic.mac = generateMac(uuid, index, taken);
      taken.add(nic.mac);
    }
  }
  // Keep the documented field order (mac before transport) for people reading it back.
  return nics.map(({ tap, bridge, mac, transport, rateLimit }) => ({
    tap,
    ...(bridge === undefined ? {} : { bridge }),
    mac,
    transport,
    ...(rateLimit === undefined ? {} : { rateLimit }),
  }));
}

function readRng(value: unknown): DomainDefinition["rng"] {
  if (value === undefined) return false;
  if (typeof value === "boolean") return value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(
      "rng",
      `expected true, false or {"rateLimit": SPEC}, got ${describeValue(value)}`,
    );
  }
  const object = readObject(value, "rng", ["rateLimit"]);
  const rateLimit = readRateLimit(object, "rng");
  return rateLimit === undefined ? true : { rateLimit };
}

function checkDeviceCount(definition: DomainDefinition): void {
  const devices = [...definition.disks!, ...definition.nics!];
  const mmio = devices.filter((device) => device.transport === "mmio").length;
  const pci = devices.length - mmio + (definition.rng ? 1 : 0) + (definition.balloon ? 1 : 0);
  if (mmio > MAX_MMIO_DEVICES) {
    throw new DefinitionError(
      "",
      `${mmio} devices on transport mmio, but at most ${MAX_MMIO_DEVICES} fit (one interrupt line each); put some on pci`,
    );
  }
  if (pci > MAX_PCI_DEVICES) {
    throw new DefinitionError(
      "",
      `${pci} devices on transport pci (disks, NICs, rng, balloon), but bus 0 has ${MAX_PCI_DEVICES} free slots; put some on mmio or remove some`,
    );
  }
}
