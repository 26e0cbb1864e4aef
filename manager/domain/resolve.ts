/**
 * Turns a validated domain definition into the `VmmConfig` a `denovisor vmm` process runs
 * (vmm/vmm_config.ts): pool volumes become paths, image formats are probed, files are
 * checked to exist and be readable, rate-limit specs are parsed. Everything that can be
 * wrong with the host's files is found here, before a VMM is spawned, and reported as a
 * `DefinitionError` naming the field ("disks[1].volume: no volume 'web' in pool 'default'").
 *
 * @module
 */

import { resolve } from "node:path";
import type { DiskDefinition, DomainDefinition, NicDefinition } from "../api_types.ts";
import type {
  VmmConfig,
  VmmDiskConfig,
  VmmNicConfig,
  VmmSataDiskConfig,
} from "../../vmm/vmm_config.ts";
import { DEFAULT_FIRMWARE } from "../../core/boot/firmware_rom.ts";
import { parseRateLimit } from "../../devices/virtio/rate_limit_spec.ts";
import type { RateLimiterConfig } from "../../devices/virtio/rate_limiter.ts";
import { DefinitionError, fieldPath } from "./definition_error.ts";
import { QCOW2_MAGIC } from "../../storage/qcow2/format.ts";
import type { ImageFormat } from "../../common/enums.ts";
import { definitionMemoryBytes, SEABIOS, validateDefinition } from "./definition.ts";

/** A pool volume's image, as the pool manager reports it. */
export interface ResolvedVolume {
  path: string;
  format: ImageFormat;
}

/**
 * Looks a volume up; throws (any error) with a message such as "no volume 'web' in pool
 * 'default'" when there is none. The message reaches the user prefixed with the field.
 */
export type VolumeLookup = (
  pool: string,
  volume: string,
) => ResolvedVolume | Promise<ResolvedVolume>;

/** Options of `resolveVmmConfig`. */
export interface ResolveOptions {
  /** The domain's runtime directory (vmm.sock, console.sock, vmm.pid, end.json). */
  runDir: string;
  /** The file the VMM appends console output and log lines to. */
  logFile: string;
  /** Resolves `pool`/`volume` disks. */
  volumes: VolumeLookup;
  /** Passed on to the re-validation (default: this host's RAM). */
  hostMemoryBytes?: number;
}

function describeFileError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "does not exist";
  if (error instanceof Deno.errors.PermissionDenied) return "cannot be read: permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory, not a file";
  return `cannot be opened: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * Checks that `path` is a regular file (or, for disks, a block device) this process can
 * open as asked, and returns its first four bytes (for format probing).
 */
async function checkFile(
  path: string,
  field: string,
  options: { write?: boolean; blockDevice?: boolean } = {},
): Promise<Uint8Array> {
  let file: Deno.FsFile | undefined;
  try {
    const info = await Deno.stat(path);
    const kind = info.isFile ? "file" : info.isBlockDevice ? "block device" : "other";
    if (kind === "other" || (kind === "block device" && !options.blockDevice)) {
      throw new DefinitionError(
        field,
        `${path} is not a regular file${options.blockDevice ? " or block device" : ""}`,
      );
    }
    file = await Deno.open(path, { read: true, write: options.write ?? false });
    const head = new Uint8Array(4);
    const count = await file.read(head);
    return head.subarray(0, count ?? 0);
  } catch (error) {
    if (error instanceof DefinitionError) throw error;
    const hint = error instanceof Deno.errors.PermissionDenied && options.write
      ? "cannot be opened for writing: permission denied; make the disk readOnly or fix its permissions"
      : describeFileError(error);
    throw new DefinitionError(field, `${path} ${hint}`, { cause: error });
  } finally {
    file?.close();
  }
}

/**
 * "qcow2" when `head` starts with the qcow2 magic (storage's one constant), else "raw":
 * a raw image stays raw, whatever its guest writes at its start later.
 */
export function probeFormat(head: Uint8Array): ImageFormat {
  if (head.length < 4) return "raw";
  return new DataView(head.buffer, head.byteOffset, 4).getUint32(0) === QCOW2_MAGIC
    ? "qcow2"
    : "raw";
}

function parseLimit(spec: string | undefined, field: string): RateLimiterConfig | undefined {
  if (spec === undefined) return undefined;
  try {
    return parseRateLimit(spec);
  } catch (error) {
    throw new DefinitionError(field, (error as Error).message);
  }
}

async function resolveDisk(
  disk: DiskDefinition,
  path: string,
  volumes: VolumeLookup,
): Promise<VmmDiskConfig> {
  const readOnly = disk.readOnly ?? false;
  let image: string;
  let format = disk.format;
  let field: string;
  if (disk.volume !== undefined) {
    field = fieldPath(path, "volume");
    const pool = disk.pool ?? "default";
    let volume: ResolvedVolume;
    try {
      volume = await volumes(pool, disk.volume);
    } catch (error) {
      throw new DefinitionError(field, error instanceof Error ? error.message : String(error), {
        cause: error,
      });
    }
    if (format !== undefined && format !== volume.format) {
      throw new DefinitionError(
        fieldPath(path, "format"),
        `${format}, but volume '${disk.volume}' of pool '${pool}' is ${volume.format}; leave format out`,
      );
    }
    image = resolve(volume.path);
    format = volume.format;
  } else {
    field = fieldPath(path, "path");
    image = resolve(disk.path!);
  }
  const head = await checkFile(image, field, { write: !readOnly, blockDevice: true });
  const config: VmmDiskConfig = {
    path: image,
    format: format ?? probeFormat(head),
    readOnly,
    transport: disk.transport ?? "pci",
  };
  if (disk.serial !== undefined) config.serial = disk.serial;
  const rateLimit = parseLimit(disk.rateLimit, fieldPath(path, "rateLimit"));
  if (rateLimit) config.rateLimit = rateLimit;
  return config;
}

function resolveNic(nic: NicDefinition, path: string): VmmNicConfig {
  const config: VmmNicConfig = {
    tap: nic.tap ?? "auto",
    mac: nic.mac!,
    transport: nic.transport ?? "pci",
  };
  if (nic.bridge !== undefined) config.bridge = nic.bridge;
  const rateLimit = parseLimit(nic.rateLimit, fieldPath(path, "rateLimit"));
  if (rateLimit) config.rateLimit = rateLimit;
  return config;
}

/**
 * Resolves a validated definition (one with a uuid, as `validateDefinition` returns) into
 * the VMM's config. Throws `DefinitionError` for missing or unreadable kernels, initrds
 * and images, and for volumes the `volumes` lookup refuses.
 */
export async function resolveVmmConfig(
  input: DomainDefinition,
  options: ResolveOptions,
): Promise<VmmConfig> {
  if (input.uuid === undefined) {
    throw new DefinitionError("uuid", "missing; resolve a definition validateDefinition returned");
  }
  const definition = validateDefinition(input, { hostMemoryBytes: options.hostMemoryBytes });
  let boot: VmmConfig["boot"];
  if ("demo" in definition.boot) {
    boot = { kind: "demo" };
  } else if ("firmware" in definition.boot) {
    const { firmware, order } = definition.boot;
    const image = firmware === SEABIOS ? DEFAULT_FIRMWARE : firmware;
    await checkFile(image, "boot.firmware");
    boot = { kind: "firmware", firmware: image, ...(order === undefined ? {} : { order }) };
  } else {
    const { kernel, initrd, cmdline } = definition.boot;
    await checkFile(kernel, "boot.kernel");
    if (initrd !== undefined) await checkFile(initrd, "boot.initrd");
    boot = { kind: "linux", kernel, cmdline: cmdline ?? "" };
    if (initrd !== undefined) boot.initrd = initrd;
  }
  const resolved: VmmDiskConfig[] = [];
  for (const [index, disk] of definition.disks!.entries()) {
    resolved.push(await resolveDisk(disk, fieldPath("disks", index), options.volumes));
  }
  refuseSameImage(resolved);
  // SATA disks go on the AHCI controller of a firmware boot, the others are virtio-blk.
  const disks = resolved.filter((_, index) => definition.disks![index].bus !== "sata");
  const sataDisks: VmmSataDiskConfig[] = resolved
    .filter((_, index) => definition.disks![index].bus === "sata")
    .map(({ path, format, readOnly }) => ({ path, format, readOnly }));
  const cdroms: string[] = [];
  for (const [index, cdrom] of (definition.cdroms ?? []).entries()) {
    await checkFile(cdrom, fieldPath("cdroms", index));
    cdroms.push(resolve(cdrom));
  }
  const config: VmmConfig = {
    name: definition.name,
    uuid: definition.uuid!,
    vcpus: definition.vcpus!,
    memoryBytes: definitionMemoryBytes(definition),
    boot,
    disks,
    nics: definition.nics!.map((nic, index) => resolveNic(nic, fieldPath("nics", index))),
    balloon: definition.balloon ?? false,
    virtioConsole: definition.console === "virtio",
    onReboot: definition.onReboot ?? "restart",
    logFile: resolve(options.logFile),
    runDir: resolve(options.runDir),
  };
  if (sataDisks.length > 0) config.sataDisks = sataDisks;
  if (cdroms.length > 0) config.cdroms = cdroms;
  if (definition.rng) {
    const spec = typeof definition.rng === "object" ? definition.rng.rateLimit : undefined;
    const rateLimit = parseLimit(spec, "rng.rateLimit");
    config.rng = rateLimit ? { rateLimit } : {};
  }
  return config;
}

/** A volume and a path (or two volumes) may name the same image; the domain gets it once. */
function refuseSameImage(disks: VmmDiskConfig[]): void {
  disks.forEach((disk, index) => {
    const earlier = disks.findIndex((other) => other.path === disk.path);
    if (earlier < index) {
      throw new DefinitionError(
        fieldPath("disks", index),
        `${disk.path} is the same image as disks[${earlier}]; a domain may use an image once`,
      );
    }
  });
}
