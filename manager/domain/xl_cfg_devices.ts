/**
 * The device specs inside xl.cfg lists: disk specs (xl-disk-configuration(5): positional
 * `target, format, vdev, access`, `key=value` items, flags, deprecated `phy:`/`file:`/
 * `tap:aio:` prefixes) and vif specs (xl-network-configuration(5)).
 *
 * @module
 */

import { resolve } from "node:path";
import type { DiskDefinition, NicDefinition } from "../api_types.ts";
import { XlCfgError } from "./xl_cfg_syntax.ts";
import { IMAGE_FORMATS, type ImageFormat, isOneOf } from "../../common/enums.ts";

/** Where a spec came from, for messages. */
export interface SpecContext {
  line: number;
  /** "disk[1]", "vif[0]". */
  path: string;
  warn: (message: string) => void;
}

const POSITIONAL = ["target", "format", "vdev", "access"] as const;
type Positional = typeof POSITIONAL[number];

/** Old-style target prefixes ("phy:", "tap:aio:", "qcow2:"): backend types and formats. */
const PREFIX = /^(phy|file|tap|tap2|aio|raw|qcow|qcow2|vhd|qed):/;
/** Disk flags and keys that only choose Xen's backend: the guest sees the same disk. */
const HARMLESS_DISK_FLAGS = ["direct-io-safe", "discard", "no-discard", "trusted", "untrusted"];
const HARMLESS_DISK_KEYS = ["backendtype", "specification", "vdev"];

function readFormat(format: string, context: SpecContext): ImageFormat | undefined {
  if (format === "") return undefined;
  if (isOneOf(format, IMAGE_FORMATS)) return format;
  throw new XlCfgError(
    context.line,
    `format ${format} is not one Denovisor reads (${
      IMAGE_FORMATS.join(", ")
    }); convert the image with qemu-img convert -O qcow2`,
    context.path,
  );
}

function readAccess(access: string, context: SpecContext): boolean | undefined {
  if (access === "") return undefined;
  if (access === "ro" || access === "r") return true;
  if (access === "rw" || access === "w") return false;
  throw new XlCfgError(context.line, `access '${access}' is not one of ro, rw`, context.path);
}

/** Parses one xl disk spec. */
export function parseXlDisk(
  spec: string,
  context: SpecContext & { baseDir: string },
): DiskDefinition {
  const values = new Map<Positional, string>();
  let hadPrefix = false;
  let cdrom = false;
  const set = (key: Positional, value: string) => {
    if (values.has(key)) {
      throw new XlCfgError(context.line, `${key} is given twice`, context.path);
    }
    values.set(key, value);
  };
  const setTarget = (target: string) => {
    let rest = target;
    for (let prefix = PREFIX.exec(rest); prefix; prefix = PREFIX.exec(rest)) {
      hadPrefix = true;
      if (["raw", "qcow", "qcow2", "vhd", "qed"].includes(prefix[1])) set("format", prefix[1]);
      rest = rest.slice(prefix[0].length);
    }
    set("target", rest);
  };
  const parts = spec.split(",");
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index].trim();
    const eq = part.indexOf("=");
    if (eq < 0) {
      if (part === "cdrom") {
        cdrom = true;
      } else if (HARMLESS_DISK_FLAGS.includes(part)) {
        continue;
      } else {
        // Positional: the next slot not given yet (format is skipped after a prefix).
        const slot = POSITIONAL.find((key) => !values.has(key) && !(key === "format" && hadPrefix));
        if (slot === undefined) {
          throw new XlCfgError(
            context.line,
            `too many positional parameters at '${part}'`,
            context.path,
          );
        }
        if (slot === "target") setTarget(part);
        else if (slot === "vdev" && part.endsWith(":cdrom")) {
          cdrom = true;
          set("vdev", part.slice(0, -":cdrom".length));
        } else set(slot, part);
      }
      continue;
    }
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "target") {
      // target= takes the rest of the spec, commas included (xl-disk-configuration).
      setTarget(parts.slice(index).join(",").slice(parts[index].indexOf("=") + 1).trim());
      break;
    }
    if (key === "format" || key === "vdev" || key === "access") {
      set(key, value);
    } else if (key === "devtype") {
      if (value === "cdrom") cdrom = true;
      else if (value !== "disk") {
        throw new XlCfgError(
          context.line,
          `devtype '${value}' is not one of disk, cdrom`,
          context.path,
        );
      }
    } else if (key === "backend" && (value === "0" || value === "Domain-0")) {
      continue;
    } else if (key === "script") {
      throw new XlCfgError(
        context.line,
        "script= hotplug scripts are not run by Denovisor; prepare the device and give its path as the target",
        context.path,
      );
    } else if (!HARMLESS_DISK_KEYS.includes(key)) {
      throw new XlCfgError(
        context.line,
        `${key}= cannot be honoured; Denovisor maps target, format, vdev, access, devtype`,
        context.path,
      );
    }
  }
  const target = values.get("target") ?? "";
  if (target === "") {
    throw new XlCfgError(
      context.line,
      "no target; give the image path (an empty CD-ROM drive has no Denovisor equivalent)",
      context.path,
    );
  }
  const disk: DiskDefinition = { path: resolve(context.baseDir, target) };
  const format = readFormat(values.get("format") ?? "", context);
  if (format !== undefined) disk.format = format;
  let readOnly = readAccess(values.get("access") ?? "", context);
  if (cdrom) {
    context.warn(
      `xl.cfg line ${context.line}: ${context.path}: the CD-ROM becomes a read-only virtio disk`,
    );
    readOnly = true;
  }
  if (readOnly !== undefined) disk.readOnly = readOnly;
  return disk;
}

/** xl's vif rate: RATE/s[@INTERVAL], RATE in B, KB, MB, GB (bytes) or b, Kb, Mb, Gb (bits). */
function readRate(rate: string, context: SpecContext): string {
  const match = /^(\d+)([KMG]?)([Bb])\/s(@\d+(s|ms|us))?$/.exec(rate);
  const scale = match ? { "": 1, K: 1e3, M: 1e6, G: 1e9 }[match[2]]! : 0;
  const bytes = match ? Math.floor((Number(match[1]) * scale) / (match[3] === "b" ? 8 : 1)) : 0;
  if (!match || bytes < 1) {
    throw new XlCfgError(
      context.line,
      `rate '${rate}' is not a rate like 10MB/s or 100Mb/s`,
      context.path,
    );
  }
  // The interval only shapes xl's bursts; Denovisor's bucket refills over one second.
  return `bw=${bytes}`;
}

/** Parses one xl vif spec. */
export function parseXlVif(spec: string, context: SpecContext): NicDefinition {
  const nic: NicDefinition = {};
  for (const raw of spec.split(",")) {
    const part = raw.trim();
    if (part === "" || part === "trusted" || part === "untrusted") continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq).trim();
    const value = eq < 0 ? "" : part.slice(eq + 1).trim();
    switch (key) {
      case "mac":
        nic.mac = value;
        break;
      case "bridge":
        nic.bridge = value;
        break;
      case "vifname":
        nic.tap = value;
        break;
      case "rate":
        nic.rateLimit = readRate(value, context);
        break;
      case "type":
      case "devid":
        break;
      case "backend":
        if (value === "0" || value === "Domain-0") break;
        throw new XlCfgError(
          context.line,
          "backend= driver domains have no Denovisor equivalent",
          context.path,
        );
      case "script":
        if (value === "vif-bridge" || value.endsWith("/vif-bridge")) break;
        throw new XlCfgError(
          context.line,
          `script=${value} is not run by Denovisor; it puts the tap on bridge= itself`,
          context.path,
        );
      case "model":
        if (value !== "virtio" && value !== "virtio-net") {
          context.warn(
            `xl.cfg line ${context.line}: ${context.path}: model=${value} ignored; the NIC is virtio-net`,
          );
        }
        break;
      case "ip":
      case "mtu":
      case "gatewaydev":
        context.warn(
          `xl.cfg line ${context.line}: ${context.path}: ${key}= is for xl's hotplug scripts and is ignored`,
        );
        break;
      default:
        throw new XlCfgError(
          context.line,
          `${key} cannot be honoured; Denovisor maps mac, bridge, vifname, rate`,
          context.path,
        );
    }
  }
  return nic;
}
