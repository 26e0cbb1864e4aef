import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { CMDLINE_START, ZERO_PAGE_START } from "../layout.ts";
import { BootParamsOffset, writeBootParams } from "./boot_params.ts";
import { parseBzImage } from "./bzimage.ts";
import { e820Map } from "./e820.ts";
import { buildBzImage } from "./_test_images.ts";
import { BootImageError } from "./boot_error.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const Z = ZERO_PAGE_START;

Deno.test("BootParamsOffset matches zero-page.rst and boot.rst", () => {
  // Offsets copied by hand from Documentation/arch/x86/zero-page.rst and boot.rst.
  const expected: Record<string, number> = {
    acpi_rsdp_addr: 0x070,
    ext_ramdisk_image: 0x0c0,
    ext_ramdisk_size: 0x0c4,
    ext_cmd_line_ptr: 0x0c8,
    e820_entries: 0x1e8,
    sentinel: 0x1ef,
    hdr: 0x1f1,
    e820_table: 0x2d0,
    setup_sects: 0x1f1,
    syssize: 0x1f4,
    boot_flag: 0x1fe,
    header: 0x202,
    version: 0x206,
    type_of_loader: 0x210,
    loadflags: 0x211,
    code32_start: 0x214,
    ramdisk_image: 0x218,
    ramdisk_size: 0x21c,
    heap_end_ptr: 0x224,
    cmd_line_ptr: 0x228,
    initrd_addr_max: 0x22c,
    kernel_alignment: 0x230,
    relocatable_kernel: 0x234,
    xloadflags: 0x236,
    cmdline_size: 0x238,
    payload_offset: 0x248,
    payload_length: 0x24c,
    setup_data: 0x250,
    pref_address: 0x258,
    init_size: 0x260,
    handover_offset: 0x264,
    kernel_info_offset: 0x268,
  };
  for (const [field, offset] of Object.entries(expected)) {
    assert.equal(BootParamsOffset[field as keyof typeof BootParamsOffset], offset, field);
  }
});

Deno.test("writeBootParams() copies a bzImage's setup header and fills the loader fields", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  mem.fill(Z, 0x1000, 0xee);
  const image = parseBzImage(buildBzImage());
  const e820 = e820Map(64 * MiB);
  assert.equal(
    writeBootParams(mem, {
      setupHeader: image.setupHeaderBytes,
      cmdlineAddress: CMDLINE_START,
      cmdlineSize: 2047,
      initrd: { address: 0x3c00000, size: 0x123456 },
      e820,
    }),
    Z,
  );
  assert.deepEqual(
    mem.read(Z + 0x1f1, image.setupHeaderBytes.length).subarray(0, 0x1f),
    image.setupHeaderBytes.subarray(0, 0x1f),
  );
  assert.equal(mem.readU16(Z + 0x1fe), 0xaa55);
  assert.equal(mem.readU32(Z + 0x202), 0x53726448, "HdrS");
  assert.equal(mem.readU16(Z + 0x206), 0x020f, "the kernel's version is kept");
  assert.equal(mem.readU8(Z + 0x210), 0xff, "type_of_loader");
  assert.equal(mem.readU8(Z + 0x211), 0x01, "loadflags: LOADED_HIGH, no CAN_USE_HEAP");
  assert.equal(mem.readU32(Z + 0x228), CMDLINE_START, "cmd_line_ptr");
  assert.equal(mem.readU32(Z + 0x0c8), 0, "ext_cmd_line_ptr");
  assert.equal(mem.readU32(Z + 0x218), 0x3c00000, "ramdisk_image");
  assert.equal(mem.readU32(Z + 0x21c), 0x123456, "ramdisk_size");
  assert.equal(mem.readU32(Z + 0x0c0), 0, "ext_ramdisk_image");
  assert.equal(mem.readU32(Z + 0x0c4), 0, "ext_ramdisk_size");
  assert.equal(mem.readU32(Z + 0x238), 2047, "cmdline_size from the kernel");
  assert.equal(mem.readU8(Z + 0x1ef), 0, "sentinel is zero");
  assert.equal(mem.readU8(Z + 0x1e8), 3, "e820_entries");
  e820.forEach((e, i) => {
    const at = Z + 0x2d0 + i * 20;
    assert.equal(mem.readU64(at), BigInt(e.addr));
    assert.equal(mem.readU64(at + 8), BigInt(e.size));
    assert.equal(mem.readU32(at + 16), e.type);
  });
  assert.equal(mem.readU8(Z + 0x2d0 + 3 * 20), 0, "the rest of the page is zeroed");
  assert.equal(mem.readU8(Z + 0xfff), 0);
});

Deno.test("writeBootParams() synthesises a setup header for a vmlinux", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  writeBootParams(mem, {
    cmdlineAddress: CMDLINE_START,
    cmdlineSize: 0xffff,
    e820: e820Map(64 * MiB),
  });
  assert.equal(mem.readU16(Z + 0x1fe), 0xaa55);
  assert.equal(mem.readU32(Z + 0x202), 0x53726448);
  assert.equal(mem.readU16(Z + 0x206), 0x020c);
  assert.equal(mem.readU32(Z + 0x230), 0x1000000, "kernel_alignment");
  assert.equal(mem.readU32(Z + 0x238), 0xffff, "cmdline_size");
  assert.equal(mem.readU8(Z + 0x210), 0xff);
  assert.equal(mem.readU32(Z + 0x218), 0, "no initrd");
});

Deno.test("writeBootParams() splits addresses above 4 GiB into the ext_ fields", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  writeBootParams(mem, {
    cmdlineAddress: 5 * GiB + 0x20,
    cmdlineSize: 100,
    initrd: { address: 4 * GiB + 0x1000, size: 0x1_2345_6789 },
    e820: [],
  });
  assert.deepEqual([mem.readU32(Z + 0x228), mem.readU32(Z + 0x0c8)], [GiB + 0x20, 1]);
  assert.deepEqual([mem.readU32(Z + 0x218), mem.readU32(Z + 0x0c0)], [0x1000, 1]);
  assert.deepEqual([mem.readU32(Z + 0x21c), mem.readU32(Z + 0x0c4)], [0x2345_6789, 1]);
});

Deno.test("writeBootParams() refuses more than 128 e820 entries", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const e820 = Array.from({ length: 129 }, (_, i) => ({ addr: i * 4096, size: 4096, type: 1 }));
  assert.throws(
    () => writeBootParams(mem, { cmdlineAddress: 0, cmdlineSize: 1, e820 }),
    BootImageError,
  );
});

Deno.test("writeBootParams() sets acpi_rsdp_addr only when there are ACPI tables", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const config = { cmdlineAddress: CMDLINE_START, cmdlineSize: 100, e820: e820Map(64 * MiB) };
  writeBootParams(mem, config);
  assert.equal(mem.readU64(Z + 0x070), 0n);
  writeBootParams(mem, { ...config, acpiRsdp: 0xe0000 });
  assert.equal(mem.readU64(Z + 0x070), 0xe0000n);
});
