/**
 * The JSON document inside a state file: which Denovisor wrote it, the VMM config the
 * state belongs to, where guest RAM is, and one section per stateful piece keyed by its
 * stable id (vm, vcpu0.., and every device by its config id). A section carries its own
 * layout version; the piece that owns it validates its `state` when it restores.
 *
 * Everything here arrives from a file, so `parseStateDocument` checks every field and
 * names the offending one by its path.
 *
 * @module
 */

import { StateError, StateReader } from "../../common/persist.ts";
import { PAGE_SIZE } from "./state_format.ts";

/** One range of guest RAM and where its bytes are in the memory file (or stream). */
export interface MemoryRangeRecord {
  /** Guest physical address of the range, page aligned. */
  guestAddress: number;
  /** Size in bytes, page aligned, non-zero. */
  size: number;
  /** Offset of the range's first byte in the memory file; ranges are laid end to end. */
  fileOffset: number;
}

/** Where guest RAM was written. */
export interface MemoryDescription {
  /** "file": a companion memory file (mapped on restore); "inline": in the state file. */
  storage: "file" | "inline";
  /** The memory file's name, relative to the state file's directory (storage "file"). */
  file?: string;
  /** The granularity of holes and inline records. */
  pageSize: number;
  ranges: MemoryRangeRecord[];
  /** The memory file's size: the sum of the ranges' sizes. */
  fileSize: number;
}

/** The saved state of one piece, keyed by the piece's stable id. */
export interface StateSection {
  /** Stable id: "vm", "vcpu0", "serial0", a disk's or a NIC's id... */
  id: string;
  /** What the piece is ("vm", "vcpu", "uart16550", "virtio-blk/pci"...): checked on restore. */
  kind: string;
  /** The layout version of `state`. */
  version: number;
  /** The piece's own state (plain JSON), validated by the piece on restore. */
  state: unknown;
}

/** The whole document. */
export interface StateDocument {
  /** The Denovisor version that wrote the file (informational; the format version rules). */
  denovisorVersion: string;
  /** When the state was taken, ISO 8601 UTC. */
  createdAt: string;
  /** Why it was taken: "save", "snapshot", "migration"... */
  purpose: string;
  /** The VMM config (vmm/vmm_config.ts) the state belongs to; validated by the restorer. */
  config: unknown;
  memory: MemoryDescription;
  sections: StateSection[];
}

/** At most this many RAM ranges (the machine layout uses two: below and above the hole). */
const MAX_RANGES = 64;
/** At most this many sections (254 vCPUs plus devices, with room to spare). */
const MAX_SECTIONS = 4096;
/** 52 bits of guest physical address space, as x86-64 allows. */
const MAX_GUEST_ADDRESS = 2 ** 52;
// Device ids are the config's (vmm/device_names.ts DEVICE_ID_PATTERN): letters of either case.
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const KIND = /^[a-z][a-z0-9_./-]{0,63}$/;
const MEMORY_FILE_NAME = /^[A-Za-z0-9._-]{1,255}$/;

/** Checks an untrusted document (already JSON-parsed) and returns it typed. */
export function parseStateDocument(value: unknown): StateDocument {
  const root = new StateReader(value, "document");
  const denovisorVersion = root.string("denovisorVersion", 64);
  const createdAt = root.string("createdAt", 64);
  if (Number.isNaN(Date.parse(createdAt))) {
    throw new StateError(root.fieldPath("createdAt"), `${JSON.stringify(createdAt)} is not a date`);
  }
  const purpose = root.string("purpose", 32);
  const config = root.raw("config");
  new StateReader(config, root.fieldPath("config")); // an object; the restorer validates it
  const memory = parseMemory(root.object("memory"));
  const seen = new Set<string>();
  const sections = root.array("sections", MAX_SECTIONS, (entry, path) => {
    const section = new StateReader(entry, path);
    const id = section.string("id", 64);
    if (!ID.test(id)) {
      throw new StateError(section.fieldPath("id"), `${JSON.stringify(id)} is not a valid id`);
    }
    if (seen.has(id)) throw new StateError(section.fieldPath("id"), `section ${id} appears twice`);
    seen.add(id);
    const kind = section.string("kind", 64);
    if (!KIND.test(kind)) {
      throw new StateError(
        section.fieldPath("kind"),
        `${JSON.stringify(kind)} is not a valid kind`,
      );
    }
    const version = section.integer("version", 1, 0xffff);
    const state = section.raw("state");
    new StateReader(state, section.fieldPath("state"));
    return { id, kind, version, state };
  });
  return { denovisorVersion, createdAt, purpose, config, memory, sections };
}

function parseMemory(memory: StateReader): MemoryDescription {
  const storage = memory.string("storage", 8, ["file", "inline"] as const);
  const pageSize = memory.integer("pageSize", PAGE_SIZE, PAGE_SIZE);
  let file: string | undefined;
  if (storage === "file") {
    file = memory.string("file", 255);
    if (!MEMORY_FILE_NAME.test(file) || file === "." || file === "..") {
      throw new StateError(
        memory.fieldPath("file"),
        `${JSON.stringify(file)} must be a plain file name beside the state file`,
      );
    }
  } else if (memory.has("file")) {
    throw new StateError(memory.fieldPath("file"), "inline memory has no memory file");
  }
  let nextOffset = 0;
  const ranges = memory.array("ranges", MAX_RANGES, (entry, path) => {
    const range = new StateReader(entry, path);
    const guestAddress = range.integer("guestAddress", 0, MAX_GUEST_ADDRESS);
    const size = range.integer("size", PAGE_SIZE, MAX_GUEST_ADDRESS);
    const fileOffset = range.integer("fileOffset", 0, MAX_GUEST_ADDRESS);
    if (guestAddress % PAGE_SIZE || size % PAGE_SIZE) {
      throw new StateError(path, "guestAddress and size must be multiples of the page size");
    }
    if (guestAddress + size > MAX_GUEST_ADDRESS) {
      throw new StateError(path, "the range ends above the 52-bit guest address space");
    }
    if (fileOffset !== nextOffset) {
      throw new StateError(
        range.fieldPath("fileOffset"),
        `expected ${nextOffset} (ranges are laid end to end), got ${fileOffset}`,
      );
    }
    nextOffset += size;
    return { guestAddress, size, fileOffset };
  });
  if (ranges.length === 0) throw new StateError(memory.fieldPath("ranges"), "no RAM range");
  const sorted = [...ranges].sort((a, b) => a.guestAddress - b.guestAddress);
  for (let index = 1; index < sorted.length; index++) {
    const previous = sorted[index - 1];
    if (previous.guestAddress + previous.size > sorted[index].guestAddress) {
      throw new StateError(memory.fieldPath("ranges"), "two RAM ranges overlap");
    }
  }
  const fileSize = memory.integer("fileSize", 0, MAX_GUEST_ADDRESS);
  if (fileSize !== nextOffset) {
    throw new StateError(
      memory.fieldPath("fileSize"),
      `expected ${nextOffset} (the sum of the ranges), got ${fileSize}`,
    );
  }
  return file === undefined
    ? { storage, pageSize, ranges, fileSize }
    : { storage, file, pageSize, ranges, fileSize };
}

/** The section with `id`, checked to be of `kind`; a missing or mismatched one is refused. */
export function sectionOf(document: StateDocument, id: string, kind: string): StateSection {
  const section = document.sections.find((candidate) => candidate.id === id);
  if (!section) throw new StateError(`document.sections`, `no section for ${id}`);
  if (section.kind !== kind) {
    throw new StateError(
      `document.sections[${id}].kind`,
      `expected ${kind}, got ${section.kind} (the state belongs to another machine layout)`,
    );
  }
  return section;
}
