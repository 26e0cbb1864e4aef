/**
 * bzImage loading (Linux x86 boot protocol, Documentation/arch/x86/boot.rst): validates the
 * setup header and copies the protected-mode kernel into guest memory for the 64-bit entry.
 * Building boot_params from the header is done by boot_params.ts.
 *
 * Load address: HIMEM_START (1 MiB), where every protocol version accepts a kernel, as
 * QEMU and linux-loader do. A relocatable kernel then decompresses itself to
 * max(align_up(1 MiB, kernel_alignment), pref_address) and needs init_size bytes from there,
 * so the memory check covers that range too (and the initrd is placed above it).
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { HIMEM_START } from "../layout.ts";
import { BootImageError, hex, mib } from "./boot_error.ts";
import {
  BOOT_FLAG_MAGIC,
  BOOT_PROTOCOL_64BIT,
  HEADER_MAGIC,
  LOADED_HIGH,
  SETUP_HEADER_AREA_END,
  SETUP_HEADER_START,
  SetupHeaderOffset as O,
  XLF_KERNEL_64,
} from "./setup_header.ts";

/** The setup header fields a loader uses (names as in boot.rst, camel-cased). */
export interface SetupHeader {
  /** Number of 512-byte setup sectors after the boot sector (0 in the file means 4). */
  readonly setupSects: number;
  /** Protected-mode kernel size in 16-byte paragraphs. */
  readonly syssize: number;
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  readonly version: number;
  readonly loadflags: number;
  readonly code32Start: number;
  /** Highest address the initrd's last byte may occupy. */
  readonly initrdAddrMax: number;
  readonly kernelAlignment: number;
  readonly relocatableKernel: boolean;
  readonly xloadflags: number;
  /** Longest command line, without the terminating NUL. */
  readonly cmdlineSize: number;
  readonly payloadOffset: number;
  readonly payloadLength: number;
  /** Preferred (and, for a non-relocatable kernel, required) runtime address. */
  readonly prefAddress: number;
  /** Contiguous bytes the kernel needs from its runtime address while decompressing. */
  readonly initSize: number;
}

/** A validated bzImage: header fields and where the pieces sit in the file. */
export interface BzImage {
  readonly header: SetupHeader;
  /** The raw setup header, bytes [0x1f1, end of header) of the file. */
  readonly setupHeaderBytes: Uint8Array;
  /** File offset of the protected-mode kernel ((setup_sects + 1) * 512). */
  readonly kernelOffset: number;
  readonly kernelSize: number;
}

/** What loadBzImage() put in guest memory. */
export interface BzImageLoadResult {
  readonly header: SetupHeader;
  /** Copy into boot_params at 0x1f1. */
  readonly setupHeaderBytes: Uint8Array;
  /** Where the protected-mode kernel was copied. */
  readonly loadAddress: number;
  /** The 64-bit entry point: load address + 0x200. */
  readonly entry64: number;
  /** First byte past everything the kernel may use before it reads the e820 map. */
  readonly kernelEnd: number;
}

/** Whether `bytes` carries the "HdrS" magic of a Linux x86 boot image. */
export function looksLikeBzImage(bytes: Uint8Array): boolean {
  return bytes.length >= O.header + 4 &&
    new DataView(bytes.buffer, bytes.byteOffset).getUint32(O.header, true) === HEADER_MAGIC;
}

/** Parses and validates the setup header of a bzImage that supports the 64-bit entry. */
export function parseBzImage(bytes: Uint8Array): BzImage {
  if (bytes.length < O.header + 4) {
    throw headerError(`file is ${bytes.length} bytes, too short for a setup header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(O.header, true) !== HEADER_MAGIC) {
    throw headerError(`missing the "HdrS" magic at ${hex(O.header)}`);
  }
  const bootFlag = view.getUint16(O.boot_flag, true);
  if (bootFlag !== BOOT_FLAG_MAGIC) {
    throw headerError(`boot_flag is ${hex(bootFlag)}, expected 0xaa55`);
  }
  const version = view.getUint16(O.version, true);
  if (version < BOOT_PROTOCOL_64BIT) {
    throw headerError(
      `boot protocol ${
        formatVersion(version)
      } is too old; the 64-bit entry needs 2.12 (Linux 3.8 or later)`,
    );
  }
  const headerEnd = Math.min(O.header + bytes[O.jump + 1], SETUP_HEADER_AREA_END);
  if (headerEnd < O.init_size + 4) {
    throw headerError(`setup header ends at ${hex(headerEnd)}, before init_size`);
  }
  if (bytes.length < headerEnd) {
    throw headerError(`file is ${bytes.length} bytes, shorter than its setup header`);
  }
  const rawSetupSects = bytes[O.setup_sects];
  const setupSects = rawSetupSects === 0 ? 4 : rawSetupSects;
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset >= bytes.length) {
    throw headerError(
      `setup_sects ${setupSects} points past the end of a ${bytes.length}-byte file`,
    );
  }
  const header: SetupHeader = {
    setupSects,
    syssize: view.getUint32(O.syssize, true),
    version,
    loadflags: bytes[O.loadflags],
    code32Start: view.getUint32(O.code32_start, true),
    initrdAddrMax: view.getUint32(O.initrd_addr_max, true),
    kernelAlignment: view.getUint32(O.kernel_alignment, true),
    relocatableKernel: bytes[O.relocatable_kernel] !== 0,
    xloadflags: view.getUint16(O.xloadflags, true),
    cmdlineSize: view.getUint32(O.cmdline_size, true),
    payloadOffset: view.getUint32(O.payload_offset, true),
    payloadLength: view.getUint32(O.payload_length, true),
    prefAddress: Number(view.getBigUint64(O.pref_address, true)),
    initSize: view.getUint32(O.init_size, true),
  };
  if ((header.loadflags & LOADED_HIGH) === 0) {
    throw headerError("loadflags lacks LOADED_HIGH: a zImage loaded at 0x10000 is not supported");
  }
  if ((header.xloadflags & XLF_KERNEL_64) === 0) {
    throw headerError(
      "xloadflags lacks XLF_KERNEL_64: the kernel has no 64-bit entry point; use a 64-bit (x86_64) kernel",
    );
  }
  const kernelSize = bytes.length - kernelOffset;
  if (header.syssize * 16 > kernelSize) {
    throw headerError(
      `syssize says ${
        header.syssize * 16
      } bytes of kernel but only ${kernelSize} follow the setup sectors; the file is truncated`,
    );
  }
  const alignment = header.kernelAlignment;
  if (header.relocatableKernel && (alignment === 0 || (alignment & (alignment - 1)) !== 0)) {
    throw headerError(`kernel_alignment ${hex(alignment)} is not a power of two`);
  }
  if (header.payloadOffset + header.payloadLength > kernelSize) {
    throw headerError(
      `payload (offset ${header.payloadOffset}, ${header.payloadLength} bytes) runs past the kernel`,
    );
  }
  return {
    header,
    setupHeaderBytes: bytes.slice(SETUP_HEADER_START, headerEnd),
    kernelOffset,
    kernelSize,
  };
}

/**
 * Copies the protected-mode kernel of a bzImage to HIMEM_START and checks that it, and the
 * init_size bytes it needs at its runtime address, fit in guest RAM.
 */
export function loadBzImage(mem: GuestMemory, bytes: Uint8Array): BzImageLoadResult {
  const image = parseBzImage(bytes);
  const { header } = image;
  const loadAddress = HIMEM_START;
  const runtimeStart = header.relocatableKernel
    ? Math.max(alignUp(loadAddress, header.kernelAlignment), header.prefAddress)
    : header.prefAddress;
  const kernelEnd = Math.max(loadAddress + image.kernelSize, runtimeStart + header.initSize);
  if (!mem.contains(loadAddress, kernelEnd - loadAddress)) {
    throw new BootImageError(
      `bzImage kernel needs guest RAM up to ${mib(kernelEnd)} MiB (init_size ${
        mib(header.initSize)
      } MiB at ${mib(runtimeStart)} MiB) but the guest has ${mib(mem.size)} MiB`,
      "raise",
    );
  }
  mem.write(loadAddress, bytes.subarray(image.kernelOffset));
  return {
    header,
    setupHeaderBytes: image.setupHeaderBytes,
    loadAddress,
    entry64: loadAddress + 0x200,
    kernelEnd,
  };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function formatVersion(version: number): string {
  return `${version >> 8}.${(version & 0xff).toString().padStart(2, "0")}`;
}

function headerError(problem: string): BootImageError {
  return new BootImageError(`bzImage header: ${problem}`);
}
