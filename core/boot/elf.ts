/**
 * ELF64 x86-64 executable loading (a `vmlinux`, or a small test guest): validates the
 * headers, copies PT_LOAD segments to their physical addresses and finds the PVH entry
 * point announced by a Xen ELF note. Configuring the boot structures is done elsewhere.
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { BootImageError, hex, type MemoryRemedy } from "./boot_error.ts";
import { overlappingBootArea } from "./boot_areas.ts";

const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
/** e_machine of x86-64. */
export const EM_X86_64 = 62;
/** Program header types used here. */
export const PT_LOAD = 1;
export const PT_NOTE = 4;
/** Xen's note type carrying the 32-bit PVH entry point (xen/include/public/elfnote.h). */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const PN_XNUM = 0xffff;

/** One PT_LOAD segment, with file and memory ranges already validated against the file. */
export interface ElfSegment {
  /** Physical load address (p_paddr). */
  readonly paddr: number;
  readonly fileOffset: number;
  readonly fileSize: number;
  /** Bytes in memory; the part past fileSize is zero-filled (bss). */
  readonly memorySize: number;
}

/** The parts of an ELF executable a loader needs. */
export interface ElfImage {
  /** e_entry (physical for Linux's vmlinux, which sets ENTRY(phys_startup_64)). */
  readonly entry: number;
  /** The XEN_ELFNOTE_PHYS32_ENTRY value, when the image supports PVH boot. */
  readonly pvhEntry?: number;
  readonly segments: readonly ElfSegment[];
}

/** What loadElf() put in guest memory. */
export interface ElfLoadResult {
  readonly entry: number;
  readonly pvhEntry?: number;
  /** First byte past the highest loaded segment (end of bss included). */
  readonly highestAddress: number;
}

/** Whether `bytes` starts with the ELF magic (the file may still be invalid). */
export function looksLikeElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Parses and validates an ELF64 little-endian x86-64 executable. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (!looksLikeElf(bytes)) throw elfError("missing the \\x7fELF magic");
  if (bytes.length < ELF_HEADER_SIZE) {
    throw elfError(`file is ${bytes.length} bytes, shorter than the 64-byte ELF64 header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[4] !== ELFCLASS64) {
    throw elfError(`class ${bytes[4]} is not ELFCLASS64 (2); build a 64-bit kernel`);
  }
  if (bytes[5] !== ELFDATA2LSB) throw elfError(`data encoding ${bytes[5]} is not little-endian`);
  const type = view.getUint16(16, true);
  if (type !== ET_EXEC) throw elfError(`type ${type} is not ET_EXEC (2); link an executable`);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) throw elfError(`machine ${machine} is not x86-64 (62)`);
  const entry = toNumber(view.getBigUint64(24, true), "e_entry");
  const phoff = toNumber(view.getBigUint64(32, true), "e_phoff");
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phnum === 0) throw elfError("has no program headers");
  if (phnum === PN_XNUM) throw elfError("uses extended program header numbering (PN_XNUM)");
  if (phentsize !== PROGRAM_HEADER_SIZE) {
    throw elfError(`program header size ${phentsize} is not 56`);
  }
  if (phoff + phnum * phentsize > bytes.length) {
    throw elfError(
      `${phnum} program headers at offset ${phoff} run past the end of the ${bytes.length}-byte file`,
    );
  }

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const pType = view.getUint32(at, true);
    if (pType !== PT_LOAD && pType !== PT_NOTE) continue;
    const fileOffset = toNumber(view.getBigUint64(at + 8, true), `segment ${i} p_offset`);
    const paddr = toNumber(view.getBigUint64(at + 24, true), `segment ${i} p_paddr`);
    const fileSize = toNumber(view.getBigUint64(at + 32, true), `segment ${i} p_filesz`);
    const memorySize = toNumber(view.getBigUint64(at + 40, true), `segment ${i} p_memsz`);
    const align = toNumber(view.getBigUint64(at + 48, true), `segment ${i} p_align`);
    if (fileOffset + fileSize > bytes.length) {
      throw elfError(
        `segment ${i} (offset ${fileOffset}, ${fileSize} bytes) runs past the end of the ${bytes.length}-byte file; the file is truncated`,
      );
    }
    if (pType === PT_NOTE) {
      const found = findPvhEntry(bytes.subarray(fileOffset, fileOffset + fileSize), align, i);
      if (found !== undefined) pvhEntry = found;
      continue;
    }
    if (fileSize > memorySize) {
      throw elfError(`segment ${i} has p_filesz ${fileSize} larger than p_memsz ${memorySize}`);
    }
    if (!Number.isSafeInteger(paddr + memorySize)) {
      throw elfError(`segment ${i} at ${hex(paddr)} wraps around the address space`);
    }
    if (memorySize > 0) segments.push({ paddr, fileOffset, fileSize, memorySize });
  }
  if (segments.length === 0) throw elfError("has no PT_LOAD segment to load");
  return { entry, pvhEntry, segments };
}

/**
 * Copies the PT_LOAD segments of an ELF executable to their physical addresses, zero-filling
 * bss. Refuses segments outside guest RAM or overlapping the VMM's boot structures.
 */
export function loadElf(mem: GuestMemory, bytes: Uint8Array): ElfLoadResult {
  const image = parseElf(bytes);
  let highestAddress = 0;
  for (const [i, s] of image.segments.entries()) {
    const end = s.paddr + s.memorySize;
    const area = overlappingBootArea(s.paddr, end);
    if (area) {
      throw elfError(
        `segment ${i} [${hex(s.paddr)}, ${hex(end)}) overlaps the VMM's ${area.name} at [${
          hex(area.start)
        }, ${hex(area.end)}); link the kernel at or above 1 MiB`,
      );
    }
    if (!mem.contains(s.paddr, s.memorySize)) {
      throw elfError(
        `segment ${i} [${hex(s.paddr)}, ${hex(end)}) is outside guest RAM (${
          mem.size / 0x100000
        } MiB)`,
        "raise-or-check-load-address",
      );
    }
    mem.write(s.paddr, bytes.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    mem.fill(s.paddr + s.fileSize, s.memorySize - s.fileSize, 0);
    highestAddress = Math.max(highestAddress, end);
  }
  return { entry: image.entry, pvhEntry: image.pvhEntry, highestAddress };
}

/** Walks the notes of one PT_NOTE segment for Xen's PHYS32_ENTRY. */
function findPvhEntry(notes: Uint8Array, align: number, segment: number): number | undefined {
  // Linux emits 4-byte aligned notes even in ELF64; the gABI says 8. Follow p_align.
  const pad = align === 8 ? 8 : 4;
  const view = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  let at = 0;
  while (at + 12 <= notes.length) {
    const nameSize = view.getUint32(at, true);
    const descSize = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + alignUp(nameSize, pad);
    const next = descAt + alignUp(descSize, pad);
    if (descAt + descSize > notes.length) {
      throw elfError(`note at offset ${at} of segment ${segment} runs past the segment`);
    }
    const name = new TextDecoder().decode(notes.subarray(nameAt, nameAt + nameSize));
    if (name.replace(/\0+$/, "") === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      if (descSize === 4) return view.getUint32(descAt, true);
      if (descSize === 8) return toNumber(view.getBigUint64(descAt, true), "PVH entry");
      throw elfError(`Xen PHYS32_ENTRY note has a ${descSize}-byte value, expected 4 or 8`);
    }
    at = next;
  }
  return undefined;
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function toNumber(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw elfError(`${field} ${hex(value)} is beyond any guest physical address`);
  }
  return Number(value);
}

function elfError(problem: string, memoryRemedy?: MemoryRemedy): BootImageError {
  return new BootImageError(`ELF kernel: ${problem}`, memoryRemedy);
}
