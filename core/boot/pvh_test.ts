import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { CMDLINE_START, PVH_INFO_START } from "../layout.ts";
import { e820Map } from "./e820.ts";
import { HVM_START_MAGIC, writePvhStartInfo } from "./pvh.ts";
import { BootImageError } from "./boot_error.ts";

const MiB = 1024 * 1024;

Deno.test("writePvhStartInfo() writes hvm_start_info v1 field by field", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const map = e820Map(64 * MiB);
  const layout = writePvhStartInfo(mem, { cmdlineAddress: CMDLINE_START, memoryMap: map });
  const s = PVH_INFO_START;
  assert.equal(layout.startInfo, s);
  assert.equal(mem.readU32(s + 0), 0x336ec578);
  assert.equal(HVM_START_MAGIC, 0x336ec578);
  assert.equal(mem.readU32(s + 4), 1, "version");
  assert.equal(mem.readU32(s + 8), 0, "flags");
  assert.equal(mem.readU32(s + 12), 0, "nr_modules");
  assert.equal(mem.readU64(s + 16), 0n, "modlist_paddr");
  assert.equal(mem.readU64(s + 24), BigInt(CMDLINE_START), "cmdline_paddr");
  assert.equal(mem.readU64(s + 32), 0n, "rsdp_paddr");
  assert.equal(mem.readU64(s + 40), BigInt(s + 56), "memmap_paddr follows the 56-byte struct");
  assert.equal(mem.readU32(s + 48), map.length, "memmap_entries");
  assert.equal(mem.readU32(s + 52), 0, "reserved");
  map.forEach((e, i) => {
    const at = s + 56 + i * 24;
    assert.equal(mem.readU64(at), BigInt(e.addr));
    assert.equal(mem.readU64(at + 8), BigInt(e.size));
    assert.equal(mem.readU32(at + 16), e.type);
    assert.equal(mem.readU32(at + 20), 0);
  });
  assert.equal(layout.modlist, undefined);
});

Deno.test("writePvhStartInfo() passes the initrd as module 0", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const map = e820Map(64 * MiB);
  const layout = writePvhStartInfo(mem, {
    cmdlineAddress: CMDLINE_START,
    memoryMap: map,
    initrd: { address: 0x3000000, size: 12345 },
  });
  const s = PVH_INFO_START;
  assert.equal(mem.readU32(s + 12), 1);
  assert.equal(layout.modlist, s + 56 + map.length * 24);
  assert.equal(mem.readU64(s + 16), BigInt(layout.modlist!));
  assert.equal(mem.readU64(layout.modlist!), 0x3000000n, "paddr");
  assert.equal(mem.readU64(layout.modlist! + 8), 12345n, "size");
  assert.equal(mem.readU64(layout.modlist! + 16), 0n, "cmdline_paddr");
  assert.equal(mem.readU64(layout.modlist! + 24), 0n, "reserved");
});

Deno.test("writePvhStartInfo() refuses a memory map that would overflow into the zero page", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  const map = Array.from({ length: 200 }, (_, i) => ({ addr: i * 4096, size: 4096, type: 1 }));
  assert.throws(
    () => writePvhStartInfo(mem, { cmdlineAddress: CMDLINE_START, memoryMap: map }),
    BootImageError,
  );
});

Deno.test("writePvhStartInfo() hands over the ACPI RSDP when the VMM wrote tables", () => {
  const mem = GuestMemory.ofSize(64 * MiB);
  writePvhStartInfo(mem, {
    cmdlineAddress: CMDLINE_START,
    memoryMap: e820Map(64 * MiB),
    acpiRsdp: 0xe0000,
  });
  assert.equal(mem.readU64(PVH_INFO_START + 32), 0xe0000n, "rsdp_paddr");
});
