/**
 * Direct kernel boot, the composition the VMM calls: detects the kernel kind, loads it and
 * the initrd, writes the command line and the boot structures, and describes the vCPU state
 * to start from.
 *
 * - bzImage: Linux 64-bit boot protocol (boot_params in RSI, entry at load address + 0x200).
 * - ELF with a Xen PHYS32_ENTRY note: PVH (hvm_start_info in EBX, 32-bit protected mode).
 * - ELF without it (a vmlinux): 64-bit boot protocol with a synthesised boot_params, as
 *   Firecracker boots vmlinux.
 *
 * @module
 */

import type { GuestMemory } from "../guest_memory.ts";
import { BOOT_STACK_POINTER, CMDLINE_MAX_SIZE, CMDLINE_START } from "../layout.ts";
import { BootImageError } from "./boot_error.ts";
import { writeBootParams } from "./boot_params.ts";
import { type BzImageLoadResult, loadBzImage, looksLikeBzImage } from "./bzimage.ts";
import { e820Map, guestRamRegions } from "./e820.ts";
import { type ElfLoadResult, loadElf, looksLikeElf } from "./elf.ts";
import { bootControlRegisters, type BootSegments, bootSegments, writeBootGdt } from "./gdt.ts";
import { placeInitrd } from "./initrd.ts";
import { type MpTableOptions, writeMpTable } from "./mptable.ts";
import { writeIdentityPageTables } from "./page_tables.ts";
import { writePvhStartInfo } from "./pvh.ts";

/** What to boot. */
export interface BootConfig {
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly cmdline: string;
  readonly cpus: number;
  /** Names the kernel file in error messages (default "the kernel image"). */
  readonly kernelPath?: string;
  readonly mpTable?: MpTableOptions;
  /** Address of the ACPI RSDP the VMM already wrote, handed to the kernel. */
  readonly acpiRsdp?: number;
}

/** Fields common to both boot modes. */
interface BootSetupCommon {
  /** RIP (EIP for pvh32). */
  readonly entry: number;
  /** RSP: BOOT_STACK_POINTER. */
  readonly stackPointer: number;
  readonly segments: BootSegments;
  readonly controlRegisters: { readonly cr0: number; readonly cr4: number; readonly efer: number };
  /** Where the initrd was put, if one was given. */
  readonly initrd?: { readonly address: number; readonly size: number };
  /** First byte past the kernel and the memory it needs while booting. */
  readonly kernelEnd: number;
}

/** 32-bit protected mode, paging off, EBX = startInfo. */
export interface PvhBootSetup extends BootSetupCommon {
  readonly kind: "pvh32";
  readonly startInfo: number;
}

/** 64-bit long mode on identity page tables, RSI = bootParams, CR3 = pml4. */
export interface Long64BootSetup extends BootSetupCommon {
  readonly kind: "long64";
  readonly bootParams: number;
  readonly pml4: number;
  /** "bzimage" or "vmlinux" (an ELF without a PVH note). */
  readonly image: "bzimage" | "vmlinux";
}

/** The vCPU state the VMM turns into registers. */
export type BootSetup = PvhBootSetup | Long64BootSetup;

type LoadedKernel =
  | { kind: "bzimage"; result: BzImageLoadResult }
  | { kind: "elf"; result: ElfLoadResult };

/**
 * Loads the kernel (and initrd) into `mem` and writes every boot structure. `mem` must hold
 * the regions guestRamRegions(mem.size) describes. Throws BootImageError for files that are
 * not bootable kernels, corrupt headers, and images or command lines that do not fit.
 */
export function configureBoot(mem: GuestMemory, config: BootConfig): BootSetup {
  const ramSize = mem.size;
  for (const region of guestRamRegions(ramSize)) {
    if (!mem.contains(region.start, region.size)) {
      throw new RangeError(
        `Guest memory does not map [0x${region.start.toString(16)}, +0x${
          region.size.toString(16)
        }); build it from guestRamRegions()`,
      );
    }
  }
  const kernelPath = config.kernelPath ?? "the kernel image";
  const kernel = withPath(kernelPath, () => loadKernel(mem, config.kernel, kernelPath));
  const kernelEnd = kernel.kind === "bzimage"
    ? kernel.result.kernelEnd
    : kernel.result.highestAddress;

  const cmdlineLimit = kernel.kind === "bzimage"
    ? Math.min(kernel.result.header.cmdlineSize, CMDLINE_MAX_SIZE - 1)
    : CMDLINE_MAX_SIZE - 1;
  writeCmdline(mem, config.cmdline, cmdlineLimit);

  let initrd: { address: number; size: number } | undefined;
  if (config.initrd) {
    const size = config.initrd.length;
    const address = placeInitrd({
      initrdSize: size,
      kernelEnd,
      lowRamEnd: guestRamRegions(ramSize)[0].size,
      guestRamSize: ramSize,
      initrdAddrMax: kernel.kind === "bzimage" ? kernel.result.header.initrdAddrMax : undefined,
    });
    mem.write(address, config.initrd);
    initrd = { address, size };
  }

  const e820 = e820Map(ramSize);
  writeMpTable(mem, config.cpus, config.mpTable);
  writeBootGdt(mem);
  const common = { stackPointer: BOOT_STACK_POINTER, initrd, kernelEnd };

  if (kernel.kind === "elf" && kernel.result.pvhEntry !== undefined) {
    const { startInfo } = writePvhStartInfo(mem, {
      cmdlineAddress: CMDLINE_START,
      memoryMap: e820,
      initrd,
      acpiRsdp: config.acpiRsdp,
    });
    return {
      ...common,
      kind: "pvh32",
      entry: kernel.result.pvhEntry,
      startInfo,
      segments: bootSegments("pvh32"),
      controlRegisters: bootControlRegisters("pvh32"),
    };
  }

  const bootParams = writeBootParams(mem, {
    setupHeader: kernel.kind === "bzimage" ? kernel.result.setupHeaderBytes : undefined,
    cmdlineAddress: CMDLINE_START,
    cmdlineSize: cmdlineLimit,
    initrd,
    e820,
    acpiRsdp: config.acpiRsdp,
  });
  return {
    ...common,
    kind: "long64",
    image: kernel.kind === "bzimage" ? "bzimage" : "vmlinux",
    entry: kernel.kind === "bzimage" ? kernel.result.entry64 : kernel.result.entry,
    bootParams,
    pml4: writeIdentityPageTables(mem),
    segments: bootSegments("long64"),
    controlRegisters: bootControlRegisters("long64"),
  };
}

function loadKernel(mem: GuestMemory, bytes: Uint8Array, path: string): LoadedKernel {
  if (looksLikeElf(bytes)) return { kind: "elf", result: loadElf(mem, bytes) };
  if (looksLikeBzImage(bytes)) return { kind: "bzimage", result: loadBzImage(mem, bytes) };
  throw new BootImageError(`${path} is not a kernel: neither an ELF executable nor a bzImage`);
}

/** Writes the NUL-terminated command line at CMDLINE_START. */
function writeCmdline(mem: GuestMemory, cmdline: string, limit: number): void {
  if (cmdline.includes("\0")) {
    throw new BootImageError("kernel command line contains a NUL character; remove it");
  }
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.length > limit) {
    throw new BootImageError(
      `kernel command line is ${bytes.length} bytes but the kernel accepts at most ${limit}; shorten it`,
    );
  }
  mem.write(CMDLINE_START, bytes);
  mem.writeU8(CMDLINE_START + bytes.length, 0);
}

/** Prefixes the file name to the loaders' BootImageErrors, which do not know it. */
function withPath<T>(path: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof BootImageError && !error.problem.startsWith(path)) {
      throw error.about(path);
    }
    throw error;
  }
}
