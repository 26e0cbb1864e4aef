/**
 * Descriptors a sandboxed VMM was handed by its launcher instead of opening files itself:
 * it runs as an unprivileged user in a jail where `/dev/kvm`, its images, kernels and
 * `/dev/net/tun` do not exist or cannot be opened (manager/sandbox/launcher.ts opens them
 * as root, outside the jail and the network namespace, and the VMM inherits them).
 *
 * The table maps what the VMM would have opened to the inherited descriptor number. Each
 * lookup gives a fresh duplicate that the caller owns and closes as it would its own open
 * file: the inherited descriptor stays open for the life of the process, so a reboot that
 * rebuilds the machine finds the same files again, and an image's OFD lock (taken on the
 * shared open file description) lasts as long as the VMM.
 *
 * A process that was handed nothing (the daemon, `denovisor run`, tests) finds nothing
 * here and opens paths as before.
 *
 * @module
 */

import { duplicateFd } from "../ffi/file_stat.ts";
import { isInterfaceName } from "./validators.ts";
import { DenovisorError } from "./errors.ts";

/** What a launcher hands a VMM: descriptor numbers, as written to `--descriptors FILE`. */
export interface HandedDescriptors {
  /** `/dev/kvm`, opened read-write. */
  kvm?: number;
  /** Absolute path -> a descriptor of that file (images read-write or read-only as used). */
  files: Record<string, number>;
  /** Tap name -> a descriptor of `/dev/net/tun` opened in the host's network namespace. */
  taps: Record<string, number>;
}

/** A descriptor table that is not well-formed. */
export class HandedDescriptorsError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

let table: HandedDescriptors = { files: {}, taps: {} };

function descriptor(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 3 || value > 65535) {
    throw new HandedDescriptorsError(`${where} must be a descriptor number from 3 to 65535`);
  }
  return value;
}

/** Validates a descriptor table read from JSON (untrusted: it comes through a file). */
export function parseHandedDescriptors(json: unknown): HandedDescriptors {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new HandedDescriptorsError("The descriptor table must be a JSON object");
  }
  const raw = json as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!["kvm", "files", "taps"].includes(key)) {
      throw new HandedDescriptorsError(`Unknown member '${key}' in the descriptor table`);
    }
  }
  const parsed: HandedDescriptors = { files: {}, taps: {} };
  if (raw.kvm !== undefined) parsed.kvm = descriptor(raw.kvm, "kvm");
  for (const member of ["files", "taps"] as const) {
    const value = raw[member] ?? {};
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new HandedDescriptorsError(`${member} must be an object`);
    }
    for (const [key, fd] of Object.entries(value)) {
      const valid = member === "files" ? key.startsWith("/") : isInterfaceName(key);
      if (!valid) {
        throw new HandedDescriptorsError(
          `${member}: '${key}' is not ${member === "files" ? "an absolute path" : "a tap name"}`,
        );
      }
      parsed[member][key] = descriptor(fd, `${member}["${key}"]`);
    }
  }
  return parsed;
}

/** Makes `descriptors` the table of this process (once, at the VMM's start). */
export function setHandedDescriptors(descriptors: HandedDescriptors): void {
  table = descriptors;
}

function duplicate(fd: number | undefined): number | undefined {
  return fd === undefined ? undefined : duplicateFd(fd);
}

/** A new descriptor of `/dev/kvm`, or undefined when none was handed. */
export function handedKvm(): number | undefined {
  return duplicate(table.kvm);
}

/** A new descriptor of the file at `path`, or undefined when it was not handed. */
export function handedFile(path: string): number | undefined {
  return duplicate(Object.hasOwn(table.files, path) ? table.files[path] : undefined);
}

/** Whether a descriptor was handed for the file at `path` (none is made). */
export function isHandedFile(path: string): boolean {
  return Object.hasOwn(table.files, path);
}

/** A new descriptor of the `/dev/net/tun` handed for tap `name`, or undefined. */
export function handedTap(name: string): number | undefined {
  return duplicate(Object.hasOwn(table.taps, name) ? table.taps[name] : undefined);
}
