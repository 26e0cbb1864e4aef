/**
 * Reads and validates a `VmmConfig` (vmm/vmm_config.ts). The file comes from the daemon,
 * but it sits on disk and could be anything, so every field is checked once here and
 * each mistake is reported with its path: "disks[1].format: 'vmdk' is not one of raw,
 * qcow2". Unknown fields are refused, so a typo never silently means a default.
 *
 * @module
 */

import { isAbsolute } from "node:path";
import { MIN_GUEST_RAM } from "../core/boot/e820.ts";
import { MPTABLE_MAX_CPUS } from "../core/boot/mptable.ts";
import { AHCI_MAX_PORTS } from "../devices/storage/ahci/ahci_controller.ts";
import {
  RateLimiter,
  type RateLimiterConfig,
  type TokenBucketConfig,
} from "../devices/virtio/rate_limiter.ts";
import { IMAGE_FORMATS, LIFECYCLE_ACTIONS, TRANSPORTS } from "../common/enums.ts";
import {
  DISK_SERIAL_RULE,
  INTERFACE_NAME_RULE,
  isDiskSerial,
  isInterfaceName,
  isObjectName,
  isUuid,
  macProblem,
  MAX_DISK_SERIAL_LENGTH,
} from "../common/validators.ts";
import { DEVICE_ID_PATTERN, FIXED_DEVICE_IDS } from "./device_names.ts";
import { diskId, nicId } from "./device_plan.ts";
import type {
  VmmConfig,
  VmmDiskConfig,
  VmmNicConfig,
  VmmRestoreConfig,
  VmmSataDiskConfig,
} from "./vmm_config.ts";

/** A config file that cannot be used; the message names the file and the field. */
export class VmmConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VmmConfigError";
  }
}

type Json = Record<string, unknown>;

/** Field access that records where it is, so errors can say "disks[0].path". */
class Fields {
  readonly #object: Json;
  readonly #path: string;

  constructor(value: unknown, path: string, allowed: readonly string[]) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw fail(path, `must be an object, not ${describe(value)}`);
    }
    this.#object = value as Json;
    this.#path = path;
    for (const key of Object.keys(this.#object)) {
      if (!allowed.includes(key)) {
        throw fail(this.at(key), `unknown field; known fields are ${allowed.join(", ")}`);
      }
    }
  }

  at(key: string): string {
    return this.#path === "" ? key : `${this.#path}.${key}`;
  }

  has(key: string): boolean {
    return this.#object[key] !== undefined;
  }

  raw(key: string): unknown {
    return this.#object[key];
  }

  string(key: string, options: { optional: true }): string | undefined;
  string(key: string): string;
  string(key: string, options: { optional?: boolean } = {}): string | undefined {
    const value = this.#object[key];
    if (value === undefined && options.optional) return undefined;
    if (typeof value !== "string") {
      throw fail(this.at(key), `must be a string, not ${describe(value)}`);
    }
    if ([...value].some((c) => c.charCodeAt(0) < 0x20)) {
      throw fail(this.at(key), "must not hold control characters");
    }
    return value;
  }

  path(key: string, options: { optional: true }): string | undefined;
  path(key: string): string;
  path(key: string, options: { optional?: boolean } = {}): string | undefined {
    const value = options.optional ? this.string(key, { optional: true }) : this.string(key);
    if (value !== undefined && !isAbsolute(value)) {
      throw fail(this.at(key), `'${value}' is not an absolute path`);
    }
    return value;
  }

  boolean(key: string): boolean {
    const value = this.#object[key];
    if (typeof value !== "boolean") {
      throw fail(this.at(key), `must be true or false, not ${describe(value)}`);
    }
    return value;
  }

  integer(key: string, min: number, max: number): number {
    const value = this.#object[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      throw fail(this.at(key), `must be a whole number, not ${describe(value)}`);
    }
    if (value < min || value > max) {
      throw fail(this.at(key), `${value} is not from ${min} to ${max}`);
    }
    return value;
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T {
    const value = this.string(key);
    if (!choices.includes(value as T)) {
      throw fail(this.at(key), `'${value}' is not one of ${choices.join(", ")}`);
    }
    return value as T;
  }

  array(key: string): unknown[] {
    const value = this.#object[key];
    if (!Array.isArray(value)) throw fail(this.at(key), `must be an array, not ${describe(value)}`);
    return value;
  }
}

function fail(path: string, message: string): VmmConfigError {
  return new VmmConfigError(`${path}: ${message}`);
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string '${value.slice(0, 40)}'`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/** Validates parsed JSON as a `VmmConfig`; throws `VmmConfigError` naming the field. */
export function validateVmmConfig(value: unknown): VmmConfig {
  const f = new Fields(value, "", [
    "name",
    "uuid",
    "vcpus",
    "memoryBytes",
    "boot",
    "disks",
    "nics",
    "rng",
    "balloon",
    "virtioConsole",
    "cdroms",
    "sataDisks",
    "transport",
    "onReboot",
    "logFile",
    "runDir",
    "restore",
    "migrateIn",
  ]);
  const name = f.string("name");
  if (!isObjectName(name)) {
    throw fail(
      "name",
      `'${name}' must be 1-64 letters, digits, '.', '_' or '-', not starting with a symbol`,
    );
  }
  const uuid = f.string("uuid");
  if (!isUuid(uuid)) throw fail("uuid", `'${uuid}' is not a UUID (8-4-4-4-12 hex digits)`);
  const memoryBytes = f.integer("memoryBytes", MIN_GUEST_RAM, Number.MAX_SAFE_INTEGER);
  if (memoryBytes % 4096 !== 0) {
    throw fail("memoryBytes", `${memoryBytes} is not a multiple of 4096`);
  }
  const disks = f.array("disks").map((d, i) => parseDisk(d, `disks[${i}]`));
  const nics = f.array("nics").map((n, i) => parseNic(n, `nics[${i}]`));
  const taps = nics.map((n) => n.tap).filter((t) => t !== "auto");
  const twice = taps.find((t, i) => taps.indexOf(t) !== i);
  if (twice) throw fail(`nics[${taps.lastIndexOf(twice)}].tap`, `'${twice}' is used by two NICs`);
  refuseSameId(disks, nics);
  const config: VmmConfig = {
    name,
    uuid,
    vcpus: f.integer("vcpus", 1, MPTABLE_MAX_CPUS),
    memoryBytes,
    boot: parseBoot(f.raw("boot")),
    disks,
    nics,
    balloon: f.boolean("balloon"),
    onReboot: f.oneOf("onReboot", LIFECYCLE_ACTIONS),
    logFile: f.path("logFile"),
    runDir: f.path("runDir"),
  };
  if (f.has("virtioConsole")) config.virtioConsole = f.boolean("virtioConsole");
  if (f.has("cdroms")) config.cdroms = parseCdroms(f, config.boot);
  if (f.has("sataDisks")) config.sataDisks = parseSataDisks(f, config);
  if (f.has("transport")) config.transport = f.oneOf("transport", TRANSPORTS);
  if (f.has("restore")) config.restore = parseRestore(f.raw("restore"));
  if (f.has("migrateIn")) {
    if (config.restore) {
      throw fail("migrateIn", "a VMM restores a state or receives a migration, not both");
    }
    config.migrateIn = {
      socket: new Fields(f.raw("migrateIn"), "migrateIn", ["socket"]).path("socket"),
    };
  }
  if (f.has("rng")) {
    const rng = new Fields(f.raw("rng"), "rng", ["rateLimit"]);
    config.rng = rng.has("rateLimit") ? { rateLimit: parseLimit(rng, "rateLimit") } : {};
  }
  return config;
}

/** `restore`: { stateFile (absolute), paused, force? }. */
function parseRestore(value: unknown): VmmRestoreConfig {
  const f = new Fields(value, "restore", ["stateFile", "paused", "force"]);
  const restore: VmmRestoreConfig = { stateFile: f.path("stateFile"), paused: f.boolean("paused") };
  if (f.has("force")) restore.force = f.boolean("force");
  return restore;
}

function parseBoot(value: unknown): VmmConfig["boot"] {
  const known = ["kind", "kernel", "initrd", "cmdline", "firmware", "order"];
  const kind = new Fields(value, "boot", known).oneOf("kind", ["demo", "linux", "firmware"]);
  if (kind === "firmware") {
    const firmware = new Fields(value, "boot", ["kind", "firmware", "order"]);
    if (!firmware.has("order")) return { kind, firmware: firmware.path("firmware") };
    const order = firmware.array("order").map((entry, i) => {
      if (entry !== "disk" && entry !== "cdrom") {
        throw fail(`boot.order[${i}]`, `'${String(entry)}' is not one of disk, cdrom`);
      }
      return entry;
    });
    if (new Set(order).size !== order.length) {
      throw fail("boot.order", "names a device class twice");
    }
    return { kind, firmware: firmware.path("firmware"), order };
  }
  if (kind === "demo") {
    // The demo guest takes a command line and an initrd as `denovisor run` gives them.
    const demo = new Fields(value, "boot", ["kind", "cmdline", "initrd"]);
    const cmdline = demo.string("cmdline", { optional: true });
    const initrd = demo.path("initrd", { optional: true });
    return {
      kind,
      ...(cmdline === undefined ? {} : { cmdline }),
      ...(initrd === undefined ? {} : { initrd }),
    };
  }
  const f = new Fields(value, "boot", ["kind", "kernel", "initrd", "cmdline"]);
  const initrd = f.path("initrd", { optional: true });
  return {
    kind,
    kernel: f.path("kernel"),
    ...(initrd === undefined ? {} : { initrd }),
    cmdline: f.string("cmdline"),
  };
}

/** CD-ROM images: absolute paths, on the AHCI controller of a firmware boot. */
function parseCdroms(f: Fields, boot: VmmConfig["boot"]): string[] {
  const cdroms = f.array("cdroms").map((entry, i) => {
    if (typeof entry !== "string" || !isAbsolute(entry)) {
      throw fail(
        `cdroms[${i}]`,
        `must be the absolute path of an ISO image, not ${describe(entry)}`,
      );
    }
    return entry;
  });
  if (cdroms.length > 0 && boot.kind !== "firmware") {
    throw fail("cdroms", "CD-ROMs need a firmware boot (boot.kind firmware)");
  }
  if (cdroms.length > AHCI_MAX_PORTS) throw fail("cdroms", `at most ${AHCI_MAX_PORTS} CD-ROMs`);
  return cdroms;
}

/** Disks on the AHCI controller: firmware boot only, sharing its ports with the CD-ROMs. */
function parseSataDisks(f: Fields, config: VmmConfig): VmmSataDiskConfig[] {
  const disks = f.array("sataDisks").map((value, i) => {
    const d = new Fields(value, `sataDisks[${i}]`, ["path", "format", "readOnly"]);
    const disk: VmmSataDiskConfig = { path: d.path("path"), readOnly: d.boolean("readOnly") };
    if (d.has("format")) disk.format = d.oneOf("format", IMAGE_FORMATS);
    return disk;
  });
  if (disks.length > 0 && config.boot.kind !== "firmware") {
    throw fail("sataDisks", "SATA disks need a firmware boot (boot.kind firmware)");
  }
  if (disks.length + (config.cdroms?.length ?? 0) > AHCI_MAX_PORTS) {
    throw fail("sataDisks", `SATA disks and CD-ROMs share ${AHCI_MAX_PORTS} ports`);
  }
  return disks;
}

function parseDisk(value: unknown, path: string): VmmDiskConfig {
  const f = new Fields(value, path, [
    "id",
    "path",
    "format",
    "readOnly",
    "serial",
    "transport",
    "rateLimit",
  ]);
  const disk: VmmDiskConfig = {
    path: f.path("path"),
    format: f.oneOf("format", IMAGE_FORMATS),
    readOnly: f.boolean("readOnly"),
    transport: f.oneOf("transport", TRANSPORTS),
  };
  if (f.has("id")) disk.id = deviceId(f);
  const serial = f.string("serial", { optional: true });
  if (serial !== undefined) {
    if (new TextEncoder().encode(serial).length > MAX_DISK_SERIAL_LENGTH) {
      throw fail(f.at("serial"), `'${serial}' is longer than ${MAX_DISK_SERIAL_LENGTH} bytes`);
    }
    if (!isDiskSerial(serial)) {
      throw fail(f.at("serial"), `'${serial}' must be ${DISK_SERIAL_RULE}`);
    }
    disk.serial = serial;
  }
  if (f.has("rateLimit")) disk.rateLimit = parseLimit(f, "rateLimit");
  return disk;
}

function parseNic(value: unknown, path: string): VmmNicConfig {
  const f = new Fields(value, path, ["id", "tap", "mac", "bridge", "transport", "rateLimit"]);
  const tap = ifname(f, "tap");
  const mac = f.string("mac");
  const problem = macProblem(mac);
  if (problem !== undefined) throw fail(f.at("mac"), problem);
  const nic: VmmNicConfig = { tap, mac, transport: f.oneOf("transport", TRANSPORTS) };
  if (f.has("id")) nic.id = deviceId(f);
  if (f.has("bridge")) nic.bridge = ifname(f, "bridge");
  if (f.has("rateLimit")) nic.rateLimit = parseLimit(f, "rateLimit");
  return nic;
}

function deviceId(f: Fields): string {
  const id = f.string("id");
  if (!DEVICE_ID_PATTERN.test(id)) {
    throw fail(
      f.at("id"),
      `'${id}' must be 1-32 letters, digits, '.', '_' or '-', not starting with a symbol`,
    );
  }
  if (FIXED_DEVICE_IDS.includes(id)) {
    throw fail(f.at("id"), `'${id}' is the id of a built-in device; choose another`);
  }
  return id;
}

/** Disks and NICs share one id space (given ids, and the vda.../net0... of the others). */
function refuseSameId(disks: VmmDiskConfig[], nics: VmmNicConfig[]): void {
  const seen = new Map<string, string>();
  const check = (id: string, path: string) => {
    const earlier = seen.get(id);
    if (earlier !== undefined) throw fail(path, `'${id}' is already the id of ${earlier}`);
    seen.set(id, path);
  };
  disks.forEach((disk, i) =>
    check(diskId(disk, i), disk.id === undefined ? `disks[${i}]` : `disks[${i}].id`)
  );
  nics.forEach((nic, i) =>
    check(nicId(nic, i), nic.id === undefined ? `nics[${i}]` : `nics[${i}].id`)
  );
}

function ifname(f: Fields, key: string): string {
  const name = f.string(key);
  if (!isInterfaceName(name)) {
    throw fail(f.at(key), `'${name}' is not an interface name (${INTERFACE_NAME_RULE})`);
  }
  return name;
}

function parseLimit(parent: Fields, key: string): RateLimiterConfig {
  const path = parent.at(key);
  const f = new Fields(parent.raw(key), path, ["bandwidth", "ops"]);
  const config: RateLimiterConfig = {};
  for (const bucket of ["bandwidth", "ops"] as const) {
    if (!f.has(bucket)) continue;
    const b = new Fields(f.raw(bucket), f.at(bucket), ["size", "refillTimeMs", "oneTimeBurst"]);
    const parsed: TokenBucketConfig = {
      size: b.integer("size", 1, Number.MAX_SAFE_INTEGER),
      refillTimeMs: b.integer("refillTimeMs", 1, Number.MAX_SAFE_INTEGER),
    };
    if (b.has("oneTimeBurst")) {
      parsed.oneTimeBurst = b.integer("oneTimeBurst", 0, Number.MAX_SAFE_INTEGER);
    }
    config[bucket] = parsed;
  }
  try {
    new RateLimiter(config);
  } catch (error) {
    throw fail(path, error instanceof Error ? error.message : String(error));
  }
  return config;
}

/**
 * Reads `path` and validates it.
 * @throws {VmmConfigError} naming the file, and the field when the content is wrong
 */
export async function readVmmConfig(path: string): Promise<VmmConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new VmmConfigError(`Cannot read the VMM config ${path}: ${reason}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new VmmConfigError(`${path} is not valid JSON: ${reason}`);
  }
  try {
    return validateVmmConfig(json);
  } catch (error) {
    if (error instanceof VmmConfigError) {
      throw new VmmConfigError(`${path}: ${error.message}`);
    }
    throw error;
  }
}
