import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { CMDLINE_START, PD_START, PDPT_START, PML4_START } from "../layout.ts";
import { PAGE_TABLES_END, writeIdentityPageTables } from "./page_tables.ts";

/** Walks the tables like the MMU does for a 2 MiB page and returns the physical address. */
function translate(mem: GuestMemory, cr3: number, linear: number): number {
  const pml4e = mem.readU64(cr3 + Math.floor(linear / 2 ** 39) % 512 * 8);
  assert.equal(pml4e & 1n, 1n, "PML4E present");
  const pdpt = Number(pml4e & ~0xfffn);
  const pdpte = mem.readU64(pdpt + Math.floor(linear / 2 ** 30) % 512 * 8);
  assert.equal(pdpte & 1n, 1n, "PDPTE present");
  assert.equal(pdpte & 0x80n, 0n, "PDPTE points at a directory");
  const pd = Number(pdpte & ~0xfffn);
  const pde = mem.readU64(pd + Math.floor(linear / 2 ** 21) % 512 * 8);
  assert.equal(pde & 0x83n, 0x83n, "PDE present, writable, 2 MiB");
  return Number(pde & ~0x1fffffn) + linear % 2 ** 21;
}

Deno.test("writeIdentityPageTables() maps the first 4 GiB one to one with 2 MiB pages", () => {
  const mem = GuestMemory.ofSize(0x20000);
  mem.fill(0, 0x20000, 0xff);
  const cr3 = writeIdentityPageTables(mem);
  assert.equal(cr3, PML4_START);
  assert.equal(mem.readU64(PML4_START), BigInt(PDPT_START | 3));
  assert.equal(mem.readU64(PML4_START + 8), 0n, "only the first 512 GiB slot is used");
  assert.equal(mem.readU64(PDPT_START + 4 * 8), 0n, "nothing past 4 GiB");
  for (let gib = 0; gib < 4; gib++) {
    assert.equal(mem.readU64(PDPT_START + gib * 8), BigInt((PD_START + gib * 0x1000) | 3));
  }
  for (
    const address of [0, 0x1234, 0x100000 + 0x200, 0x3fffffff, 0x40000000, 0xfec00000, 0xffffffff]
  ) {
    assert.equal(translate(mem, cr3, address), address);
  }
});

Deno.test("the page directories end below the command line", () => {
  assert.equal(PAGE_TABLES_END, PD_START + 0x4000);
  assert.ok(PAGE_TABLES_END <= CMDLINE_START);
});
