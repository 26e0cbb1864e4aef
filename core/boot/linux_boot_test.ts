import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import {
  BOOT_STACK_POINTER,
  CMDLINE_START,
  MPTABLE_START,
  PML4_START,
  PVH_INFO_START,
  ZERO_PAGE_START,
} from "../layout.ts";
import { configureBoot } from "./linux_boot.ts";
import { BootImageError } from "./boot_error.ts";
import { buildBzImage, buildElf } from "./_test_images.ts";

const MiB = 1024 * 1024;

function cString(mem: GuestMemory, at: number): string {
  let end = at;
  while (mem.readU8(end) !== 0) end++;
  return new TextDecoder().decode(mem.read(at, end - at));
}

Deno.test("configureBoot() boots a bzImage through the 64-bit boot protocol", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const initrd = new Uint8Array(0x5000).fill(0x42);
  const setup = configureBoot(mem, {
    kernel: buildBzImage(),
    initrd,
    cmdline: "console=ttyS0 panic=-1",
    cpus: 2,
  });
  assert.equal(setup.kind, "long64");
  if (setup.kind !== "long64") return;
  assert.equal(setup.image, "bzimage");
  assert.equal(setup.entry, 0x100200);
  assert.equal(setup.bootParams, ZERO_PAGE_START);
  assert.equal(setup.pml4, PML4_START);
  assert.equal(setup.stackPointer, BOOT_STACK_POINTER);
  assert.equal(setup.segments.cs.selector, 0x10);
  assert.equal(setup.segments.cs.l, 1);
  assert.equal(setup.controlRegisters.efer, 0x500);
  assert.equal(cString(mem, CMDLINE_START), "console=ttyS0 panic=-1");
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x228), CMDLINE_START);
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x218), setup.initrd!.address);
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x21c), 0x5000);
  assert.equal(setup.initrd!.address, 64 * MiB - 0x5000);
  assert.deepEqual(mem.read(setup.initrd!.address, 0x5000), initrd);
  assert.equal(mem.readU8(ZERO_PAGE_START + 0x1e8), 3, "e820 entries");
  assert.equal(mem.readU32(MPTABLE_START), 0x5f504d5f, "_MP_");
  assert.equal(mem.readU64(PML4_START) & 1n, 1n, "page tables written");
});

Deno.test("configureBoot() boots an ELF with a PVH note in 32-bit mode with hvm_start_info", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  const setup = configureBoot(mem, {
    kernel: buildElf({ entry: 0x100000, pvhEntry: 0x100040 }),
    initrd: new Uint8Array(100),
    cmdline: "hello",
    cpus: 1,
  });
  assert.equal(setup.kind, "pvh32");
  if (setup.kind !== "pvh32") return;
  assert.equal(setup.entry, 0x100040);
  assert.equal(setup.startInfo, PVH_INFO_START);
  assert.equal(setup.segments.cs.selector, 0x08);
  assert.equal(setup.segments.cs.db, 1);
  assert.equal(setup.controlRegisters.cr0 & 0x80000000, 0, "paging off");
  assert.equal(mem.readU32(PVH_INFO_START), 0x336ec578);
  assert.equal(mem.readU64(PVH_INFO_START + 24), BigInt(CMDLINE_START));
  assert.equal(mem.readU32(PVH_INFO_START + 12), 1, "initrd as one module");
  assert.equal(cString(mem, CMDLINE_START), "hello");
  assert.equal(setup.initrd!.address % 4096, 0);
  assert.ok(setup.initrd!.address >= 0x102000, "above the kernel's bss");
});

Deno.test("configureBoot() boots an ELF without a PVH note like a vmlinux, with boot_params", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  const setup = configureBoot(mem, {
    kernel: buildElf({ entry: 0x100000 }),
    cmdline: "x",
    cpus: 1,
  });
  assert.equal(setup.kind, "long64");
  if (setup.kind !== "long64") return;
  assert.equal(setup.image, "vmlinux");
  assert.equal(setup.entry, 0x100000);
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x202), 0x53726448);
  assert.equal(setup.initrd, undefined);
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x218), 0);
});

Deno.test("configureBoot() names a file that is not a kernel", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  assert.throws(
    () =>
      configureBoot(mem, {
        kernel: new TextEncoder().encode("#!/bin/sh\necho hi\n"),
        cmdline: "",
        cpus: 1,
        kernelPath: "/tmp/script.sh",
      }),
    /^BootImageError: \/tmp\/script.sh is not a kernel: neither an ELF executable nor a bzImage$/,
  );
});

Deno.test("configureBoot() prefixes the kernel path to header errors", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  assert.throws(
    () =>
      configureBoot(mem, {
        kernel: buildBzImage({ version: 0x0200 }),
        cmdline: "",
        cpus: 1,
        kernelPath: "/boot/old",
      }),
    /^BootImageError: \/boot\/old: bzImage header: boot protocol 2.00 is too old/,
  );
});

Deno.test("configureBoot() refuses a command line longer than the kernel's cmdline_size", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  const kernel = buildBzImage({ cmdlineSize: 10 });
  assert.throws(
    () => configureBoot(mem, { kernel, cmdline: "a".repeat(11), cpus: 1 }),
    /kernel command line is 11 bytes but the kernel accepts at most 10; shorten it/,
  );
  configureBoot(mem, { kernel, cmdline: "a".repeat(10), cpus: 1 });
  assert.equal(cString(mem, CMDLINE_START), "aaaaaaaaaa");
});

Deno.test("configureBoot() says to raise --memory when the initrd does not fit", () => {
  const mem = GuestMemory.ofSize(24 * MiB);
  assert.throws(
    () =>
      configureBoot(mem, {
        kernel: buildBzImage(),
        initrd: new Uint8Array(8 * MiB),
        cmdline: "",
        cpus: 1,
      }),
    (error) =>
      error instanceof BootImageError &&
      error.message ===
        "kernel (19 MiB) and initrd (8 MiB) do not fit in 24 MiB of guest memory; raise --memory",
  );
});

Deno.test("configureBoot() refuses more vCPUs than the MP table holds", () => {
  const mem = GuestMemory.ofSize(32 * MiB);
  assert.throws(
    () => configureBoot(mem, { kernel: buildBzImage(), cmdline: "", cpus: 255 }),
    /255 vCPUs cannot be listed in the MP table/,
  );
});
