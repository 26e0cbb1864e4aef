import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { loadElf, parseElf } from "./elf.ts";
import { BootImageError } from "./boot_error.ts";
import { buildElf } from "./_test_images.ts";

const MiB = 1024 * 1024;

function setU64(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer).setBigUint64(at, BigInt(value), true);
}

Deno.test("loadElf() copies segments to p_paddr and zero-fills bss", () => {
  const mem = GuestMemory.ofSize(8 * MiB);
  mem.fill(0x100000, 0x300000, 0xcc);
  const elf = buildElf({
    entry: 0x100010,
    segments: [
      { paddr: 0x100000, data: new Uint8Array([1, 2, 3, 4]), memorySize: 0x1000 },
      { paddr: 0x200000, data: new Uint8Array([9, 8]), memorySize: 0x2000 },
    ],
  });
  const result = loadElf(mem, elf);
  assert.equal(result.entry, 0x100010);
  assert.equal(result.pvhEntry, undefined);
  assert.equal(result.highestAddress, 0x202000);
  assert.deepEqual([...mem.read(0x100000, 5)], [1, 2, 3, 4, 0]);
  assert.ok(mem.read(0x100004, 0x1000 - 4).every((b) => b === 0), "bss is zeroed");
  assert.deepEqual([...mem.read(0x200000, 3)], [9, 8, 0]);
  assert.equal(mem.readU8(0x202000), 0xcc, "nothing written past p_memsz");
});

Deno.test("parseElf() finds a 32-bit Xen PHYS32_ENTRY note after another note", () => {
  assert.equal(parseElf(buildElf({ pvhEntry: 0x1000a20 })).pvhEntry, 0x1000a20);
});

Deno.test("parseElf() accepts a 64-bit PHYS32_ENTRY value", () => {
  assert.equal(parseElf(buildElf({ pvhEntry: 0x123456, pvhEntryBytes: 8 })).pvhEntry, 0x123456);
});

Deno.test("parseElf() rejects a file that is not ELF", () => {
  assert.throws(() => parseElf(new Uint8Array([1, 2, 3, 4, 5])), /missing the \\x7fELF magic/);
});

Deno.test("parseElf() rejects an ELF truncated inside its header", () => {
  const elf = buildElf().subarray(0, 40);
  assert.throws(() => parseElf(elf), BootImageError);
  assert.throws(() => parseElf(elf), /file is 40 bytes, shorter than the 64-byte ELF64 header/);
});

Deno.test("parseElf() rejects a 32-bit ELF", () => {
  const elf = buildElf();
  elf[4] = 1;
  assert.throws(() => parseElf(elf), /class 1 is not ELFCLASS64/);
});

Deno.test("parseElf() rejects a big-endian ELF", () => {
  const elf = buildElf();
  elf[5] = 2;
  assert.throws(() => parseElf(elf), /not little-endian/);
});

Deno.test("parseElf() rejects the wrong machine", () => {
  assert.throws(() => parseElf(buildElf({ machine: 183 })), /machine 183 is not x86-64 \(62\)/);
});

Deno.test("parseElf() rejects a shared object", () => {
  const elf = buildElf();
  elf[16] = 3;
  assert.throws(() => parseElf(elf), /type 3 is not ET_EXEC/);
});

Deno.test("parseElf() rejects program headers past the end of the file", () => {
  const elf = buildElf();
  setU64(elf, 32, elf.length - 10);
  assert.throws(() => parseElf(elf), /program headers at offset .* run past the end/);
});

Deno.test("parseElf() rejects a segment whose file range runs past EOF", () => {
  const elf = buildElf();
  setU64(elf, 64 + 32, 0x10000); // p_filesz of segment 0
  setU64(elf, 64 + 40, 0x10000);
  assert.throws(
    () => parseElf(elf),
    /segment 0 .* runs past the end of the .*-byte file; the file is truncated/,
  );
});

Deno.test("parseElf() rejects p_filesz larger than p_memsz", () => {
  const elf = buildElf({
    segments: [{ paddr: 0x100000, data: new Uint8Array(16), memorySize: 8 }],
  });
  assert.throws(() => parseElf(elf), /p_filesz 16 larger than p_memsz 8/);
});

Deno.test("parseElf() rejects an ELF without PT_LOAD segments", () => {
  assert.throws(() => parseElf(buildElf({ segments: [], pvhEntry: 1 })), /no PT_LOAD segment/);
});

Deno.test("loadElf() refuses a segment outside guest RAM", () => {
  const mem = GuestMemory.ofSize(2 * MiB);
  const elf = buildElf({
    segments: [{ paddr: 0x1f0000, data: new Uint8Array(4), memorySize: 0x20000 }],
  });
  assert.throws(
    () => loadElf(mem, elf),
    /segment 0 \[0x1f0000, 0x210000\) is outside guest RAM \(2 MiB\)/,
  );
});

Deno.test("loadElf() refuses a segment over the VMM's boot structures below 1 MiB", () => {
  const mem = GuestMemory.ofSize(2 * MiB);
  const elf = buildElf({ segments: [{ paddr: 0x7000, data: new Uint8Array(4) }] });
  assert.throws(() => loadElf(mem, elf), /overlaps the VMM's GDT, start info, zero page/);
  const mp = buildElf({ segments: [{ paddr: 0x9f000, data: new Uint8Array(0x1000) }] });
  assert.throws(() => loadElf(mem, mp), /overlaps the VMM's .*MP table/);
});

Deno.test("loadElf() accepts a segment in free low memory between the command line and the EBDA", () => {
  const mem = GuestMemory.ofSize(2 * MiB);
  const elf = buildElf({ segments: [{ paddr: 0x40000, data: new Uint8Array([7]) }] });
  assert.equal(loadElf(mem, elf).highestAddress, 0x40001);
  assert.equal(mem.readU8(0x40000), 7);
});
