/**
 * The device parts of a domain definition (disks, NICs, rng) and host paths, read and
 * normalized for `validateDefinition` (definition.ts).
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { DiskDefinition, DomainDefinition, NicDefinition } from "../api_types.ts";
import { IMAGE_FORMATS, TRANSPORTS } from "../../common/enums.ts";
import {
  DISK_SERIAL_RULE,
  INTERFACE_NAME_RULE,
  isDiskSerial,
  isInterfaceName,
} from "../../common/validators.ts";
import { parseRateLimit } from "../../devices/virtio/rate_limit_spec.ts";
import { RateLimiterConfigError } from "../../devices/virtio/rate_limiter.ts";
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
import { DiskDefinition as DiskSchema, NicDefinition as NicSchema } from "../api_schema.ts";
import { propertyKeys } from "../../common/schema.ts";

/** The fields of a disk and a NIC: their schema's (manager/api_schema.ts). */
const DISK_FIELDS = propertyKeys(DiskSchema);
const NIC_FIELDS = propertyKeys(NicSchema);

/** An absolute, normalized host path (relative ones resolved against `baseDir`). */
export function readPath(value: string, path: string, baseDir: string | undefined): string {
  if (value === "" || value.includes("\0")) {
    throw new DefinitionError(path, `${describeValue(value)} is not a file path`);
  }
  if (isAbsolute(value)) return resolve(value);
  if (baseDir === undefined) {
    throw new DefinitionError(path, `"${value}" is not an absolute path; write the full path`);
  }
  return resolve(baseDir, value);
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

export function readDisk(
  value: unknown,
  path: string,
  baseDir: string | undefined,
): DiskDefinition {
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
  const format = readChoice(object, "format", path, IMAGE_FORMATS);
  if (format !== undefined) disk.format = format;
  disk.readOnly = readBoolean(object, "readOnly", path) ?? false;
  const serial = readString(object, "serial", path);
  if (serial !== undefined) {
    if (!isDiskSerial(serial)) {
      throw new DefinitionError(
        fieldPath(path, "serial"),
        `${describeValue(serial)} must be ${DISK_SERIAL_RULE}`,
      );
    }
    disk.serial = serial;
  }
  disk.transport = readChoice(object, "transport", path, TRANSPORTS) ?? "pci";
  const bus = readChoice(object, "bus", path, ["virtio", "sata"] as const);
  if (bus === "sata") {
    if (disk.rateLimit !== undefined || object.rateLimit !== undefined || serial !== undefined) {
      throw new DefinitionError(
        fieldPath(path, "bus"),
        "a SATA disk takes no serial or rateLimit yet",
      );
    }
    disk.bus = bus;
  }
  const rateLimit = readRateLimit(object, path);
  if (rateLimit !== undefined) disk.rateLimit = rateLimit;
  return disk;
}

export function refuseDuplicateImages(disks: DiskDefinition[]): void {
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
  if (tap !== "auto" && !isInterfaceName(tap)) {
    throw new DefinitionError(
      fieldPath(path, "tap"),
      `${describeValue(tap)} is not an interface name (${INTERFACE_NAME_RULE}) or "auto"`,
    );
  }
  nic.tap = tap;
  const bridge = readString(object, "bridge", path);
  if (bridge !== undefined) {
    if (!isInterfaceName(bridge)) {
      throw new DefinitionError(
        fieldPath(path, "bridge"),
        `${describeValue(bridge)} is not an interface name (${INTERFACE_NAME_RULE})`,
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

export function readNics(value: unknown, uuid: string): NicDefinition[] {
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

export function readRng(value: unknown): DomainDefinition["rng"] {
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
