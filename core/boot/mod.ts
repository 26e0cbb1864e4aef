/**
 * x86 direct kernel boot: loaders for ELF (vmlinux, PVH) and bzImage kernels, and writers of
 * the boot structures (boot_params, hvm_start_info, e820, MP table, GDT, page tables).
 *
 * @example
 * ```ts
 * import { GuestMemory } from "../guest_memory.ts";
 * import { configureBoot } from "./mod.ts";
 *
 * const mem = GuestMemory.ofSize(512 * 1024 * 1024);
 * const setup = configureBoot(mem, {
 *   kernel: Deno.readFileSync("bzImage"),
 *   cmdline: "console=ttyS0",
 *   cpus: 1,
 * });
 * if (setup.kind === "long64") {
 *   console.log(`RIP ${setup.entry} RSI ${setup.bootParams} CR3 ${setup.pml4}`);
 * }
 * ```
 *
 * @module
 */

export * from "./boot_error.ts";
export * from "./boot_params.ts";
export * from "./bzimage.ts";
export * from "./e820.ts";
export * from "./elf.ts";
export * from "./gdt.ts";
export * from "./initrd.ts";
export * from "./linux_boot.ts";
export * from "./mptable.ts";
export * from "./page_tables.ts";
export * from "./pvh.ts";
export * from "./setup_header.ts";
