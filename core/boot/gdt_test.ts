import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { BOOT_GDT_START, BOOT_IDT_START } from "../layout.ts";
import {
  BOOT_GDT_ENTRIES,
  BOOT_GDT_LIMIT,
  bootControlRegisters,
  bootSegments,
  encodeDescriptor,
  type KvmSegment,
  writeBootGdt,
} from "./gdt.ts";

/** Decodes a GDT descriptor back into the kvm_segment fields it carries. */
function decode(d: bigint, selector: number): KvmSegment {
  const raw = Number(d & 0xffffn) | Number((d >> 48n) & 0xfn) << 16;
  const access = Number((d >> 40n) & 0xffn);
  const flags = Number((d >> 52n) & 0xfn);
  const g = (flags >> 3) & 1;
  return {
    base: ((d >> 16n) & 0xffffffn) | (((d >> 56n) & 0xffn) << 24n),
    limit: g ? ((raw << 12) | 0xfff) >>> 0 : raw,
    selector,
    type: access & 0xf,
    s: (access >> 4) & 1,
    dpl: (access >> 5) & 3,
    present: access >> 7,
    avl: flags & 1,
    l: (flags >> 1) & 1,
    db: (flags >> 2) & 1,
    g,
    unusable: 0,
  };
}

Deno.test("encodeDescriptor() produces the classic flat descriptors", () => {
  const long = bootSegments("long64");
  const pvh = bootSegments("pvh32");
  assert.equal(encodeDescriptor(long.cs), 0x00af9b000000ffffn);
  assert.equal(encodeDescriptor(pvh.cs), 0x00cf9b000000ffffn);
  assert.equal(encodeDescriptor(long.ds), 0x00cf93000000ffffn);
});

Deno.test("writeBootGdt() writes descriptors that decode to the segments the vCPU starts with", () => {
  const mem = GuestMemory.ofSize(0x10000);
  mem.fill(0, 0x10000, 0xaa);
  writeBootGdt(mem);
  assert.equal(BOOT_GDT_START + BOOT_GDT_LIMIT + 1, BOOT_IDT_START, "GDT ends at the IDT");
  assert.equal(mem.readU64(BOOT_GDT_START), 0n, "null descriptor");
  assert.equal(mem.readU64(BOOT_IDT_START), 0n, "empty IDT");
  for (const mode of ["pvh32", "long64"] as const) {
    const s = bootSegments(mode);
    for (const seg of [s.cs, s.ds, s.es, s.fs, s.gs, s.ss]) {
      const d = mem.readU64(BOOT_GDT_START + seg.selector);
      assert.deepEqual(decode(d, seg.selector), seg, `${mode} selector ${seg.selector}`);
    }
  }
  assert.equal(BOOT_GDT_ENTRIES.length, 4);
});

Deno.test("bootSegments('long64') follows the Linux 64-bit boot protocol", () => {
  const s = bootSegments("long64");
  assert.equal(s.cs.selector, 0x10);
  assert.deepEqual([s.cs.l, s.cs.db, s.cs.type, s.cs.s, s.cs.present], [1, 0, 0xb, 1, 1]);
  for (const seg of [s.ds, s.es, s.fs, s.gs, s.ss]) {
    assert.deepEqual(
      [seg.selector, seg.base, seg.limit, seg.type, seg.g, seg.db],
      [0x18, 0n, 0xffffffff, 3, 1, 1],
    );
  }
  assert.deepEqual(s.gdt, { base: BigInt(BOOT_GDT_START), limit: 31 });
  assert.deepEqual(s.idt, { base: BigInt(BOOT_IDT_START), limit: 0 });
});

Deno.test("bootSegments('pvh32') gives 32-bit flat CS and DS and a busy 32-bit TSS", () => {
  const s = bootSegments("pvh32");
  assert.deepEqual(
    [s.cs.selector, s.cs.base, s.cs.limit, s.cs.db, s.cs.l, s.cs.type],
    [0x08, 0n, 0xffffffff, 1, 0, 0xb],
  );
  assert.deepEqual([s.ds.base, s.ds.limit, s.ds.db, s.ds.type], [0n, 0xffffffff, 1, 3]);
  assert.deepEqual(
    [s.tr.base, s.tr.limit, s.tr.type, s.tr.present, s.tr.s, s.tr.unusable],
    [0n, 0x67, 11, 1, 0, 0],
  );
  assert.equal(s.ldt.unusable, 1);
});

Deno.test("bootSegments() returns fresh objects each call", () => {
  const a = bootSegments("long64");
  a.cs.selector = 0x99;
  assert.equal(bootSegments("long64").cs.selector, 0x10);
});

Deno.test("bootControlRegisters() enables paging and long mode only for long64", () => {
  assert.deepEqual(bootControlRegisters("pvh32"), { cr0: 0x11, cr4: 0, efer: 0 });
  assert.deepEqual(bootControlRegisters("long64"), {
    cr0: 0x80000011,
    cr4: 0x20,
    efer: 0x500,
  });
});
