/**
 * The START message: what the source proposes before any memory flows. The destination
 * checks the protocol version, the RAM layout, every disk's identity (shared storage is
 * required) and the CPU features the guest was shown, and answers ACK or ERROR; only then
 * does the source send pages.
 *
 * @module
 */

import { StateError, StateReader } from "../../common/persist.ts";
import type { CpuidEntry } from "../../ffi/kvm/cpuid.ts";
import { ACCEPTED_VERSIONS, MIGRATION_PAGE_SIZE, MigrationProtocolError } from "./protocol.ts";
import type { RamExtent } from "./protocol.ts";

/**
 * How a disk proves it is the same image on both hosts: its path, its size and the
 * SHA-256 of its first MiB (or of the whole file when smaller). Device and inode numbers
 * differ between hosts of one NFS or cluster file system, so they cannot be compared.
 */
export interface DiskIdentityClaim {
  id: string;
  path: string;
  size: number;
  headSha256: string;
}

/** The START payload. */
export interface StartRequest {
  /** The oldest protocol version the source speaks (a version 1 destination checks it). */
  protocolVersion: number;
  /** The newest one (absent: only `protocolVersion`, as version 1 and 2 sources send). */
  maxProtocolVersion?: number;
  /** The domain's name (the destination refuses a name it already runs). */
  domain: string;
  /** "live": pre-copy while running; "offline": paused first, one pass. */
  mode: "live" | "offline";
  /** The VMM config (vmm/vmm_config.ts); the destination VMM validates it as its own input. */
  config: unknown;
  /** The domain definition (manager's JSON), defined on the destination when it succeeds. */
  definition?: unknown;
  /** Guest RAM ranges; every MEMORY block must fall inside one. */
  ram: RamExtent[];
  disks: DiskIdentityClaim[];
  /**
   * The CPUID table the source's VMM gave its first vCPU: the features the running guest
   * has seen, which the destination's KVM must offer too (checked before any page).
   */
  cpuid?: CpuidEntry[];
}

const MAX_GUEST_ADDRESS = 2 ** 52;
const MAX_RAM_RANGES = 64;
const MAX_DISKS = 256;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** KVM's own limit on a vCPU's CPUID table (KVM_MAX_CPUID_ENTRIES). */
const MAX_CPUID_ENTRIES = 256;
const U32 = 0xffff_ffff;

/** Checks an untrusted START payload (already JSON-parsed). */
export function parseStartRequest(value: unknown): StartRequest {
  try {
    return parse(new StateReader(value, "start"));
  } catch (error) {
    if (error instanceof StateError) {
      throw new MigrationProtocolError(
        `START ${error.message.replace(/^Saved state is invalid: /, "")}`,
      );
    }
    throw error;
  }
}

function parse(root: StateReader): StartRequest {
  const protocolVersion = root.integer("protocolVersion", 0, 0xffff);
  if (!ACCEPTED_VERSIONS.includes(protocolVersion)) {
    throw new MigrationProtocolError(
      `protocol version ${protocolVersion} is not one this Denovisor speaks (${
        ACCEPTED_VERSIONS.join(", ")
      }); upgrade the older host`,
    );
  }
  const maxProtocolVersion = root.has("maxProtocolVersion")
    ? root.integer("maxProtocolVersion", protocolVersion, 0xffff)
    : undefined;
  const domain = root.string("domain", 64);
  if (!NAME.test(domain)) throw new MigrationProtocolError(`domain name ${domain} is not valid`);
  const mode = root.string("mode", 8, ["live", "offline"] as const);
  const config = root.raw("config");
  new StateReader(config, root.fieldPath("config"));
  const definition = root.has("definition") ? root.raw("definition") : undefined;
  if (definition !== undefined) new StateReader(definition, root.fieldPath("definition"));
  const ram = root.array("ram", MAX_RAM_RANGES, (entry, path) => {
    const range = new StateReader(entry, path);
    const guestAddress = range.integer("guestAddress", 0, MAX_GUEST_ADDRESS);
    const size = range.integer("size", MIGRATION_PAGE_SIZE, MAX_GUEST_ADDRESS);
    if (guestAddress % MIGRATION_PAGE_SIZE || size % MIGRATION_PAGE_SIZE) {
      throw new StateError(path, "guestAddress and size must be whole pages");
    }
    if (guestAddress + size > MAX_GUEST_ADDRESS) {
      throw new StateError(path, "the range ends above the 52-bit address space");
    }
    return { guestAddress, size };
  });
  if (ram.length === 0) throw new MigrationProtocolError("START declares no RAM");
  const sorted = [...ram].sort((a, b) => a.guestAddress - b.guestAddress);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].guestAddress + sorted[i - 1].size > sorted[i].guestAddress) {
      throw new MigrationProtocolError("START declares overlapping RAM ranges");
    }
  }
  const disks = root.array("disks", MAX_DISKS, (entry, path) => {
    const disk = new StateReader(entry, path);
    const id = disk.string("id", 64);
    const diskPath = disk.string("path", 4096);
    if (!diskPath.startsWith("/")) throw new StateError(path, "a disk path must be absolute");
    const size = disk.integer("size", 0, Number.MAX_SAFE_INTEGER);
    const headSha256 = disk.string("headSha256", 64);
    if (!SHA256_HEX.test(headSha256)) throw new StateError(path, "headSha256 is not a hex digest");
    return { id, path: diskPath, size, headSha256 };
  });
  const request: StartRequest = { protocolVersion, domain, mode, config, ram, disks };
  if (maxProtocolVersion !== undefined) request.maxProtocolVersion = maxProtocolVersion;
  if (definition !== undefined) request.definition = definition;
  if (root.has("cpuid")) {
    request.cpuid = root.array("cpuid", MAX_CPUID_ENTRIES, (entry, path) => {
      const leaf = new StateReader(entry, path);
      return {
        function: leaf.integer("function", 0, U32),
        index: leaf.integer("index", 0, U32),
        flags: leaf.integer("flags", 0, U32),
        eax: leaf.integer("eax", 0, U32),
        ebx: leaf.integer("ebx", 0, U32),
        ecx: leaf.integer("ecx", 0, U32),
        edx: leaf.integer("edx", 0, U32),
      };
    });
  }
  return request;
}
