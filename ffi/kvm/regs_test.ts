import assert from "node:assert/strict";
import {
  decodeFpu,
  decodeRegs,
  decodeSregs,
  emptyRegs,
  encodeFpu,
  encodeRegs,
  encodeSregs,
  resetFpu,
  type Segment,
  type Sregs,
} from "./regs.ts";

const segment = (selector: number): Segment => ({
  base: 0x1000n * BigInt(selector),
  limit: 0xffffffff,
  selector,
  type: 11,
  present: 1,
  dpl: 0,
  db: 0,
  s: 1,
  l: 1,
  g: 1,
  avl: 0,
  unusable: 0,
});

Deno.test("kvm_regs encodes in the header's order: rax first, rip and rflags last", () => {
  const regs = emptyRegs();
  regs.rax = 0x1111n;
  regs.rsi = 0x7000n;
  regs.rip = 0x100200n;
  const bytes = encodeRegs(regs);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 144);
  assert.equal(view.getBigUint64(0, true), 0x1111n);
  assert.equal(view.getBigUint64(4 * 8, true), 0x7000n);
  assert.equal(view.getBigUint64(16 * 8, true), 0x100200n);
  assert.equal(view.getBigUint64(17 * 8, true), 2n);
  assert.deepEqual(decodeRegs(bytes), regs);
});

Deno.test("kvm_sregs round-trips segments, tables and control registers at their offsets", () => {
  const sregs: Sregs = {
    cs: segment(0x10),
    ds: segment(0x18),
    es: segment(0x18),
    fs: segment(0x18),
    gs: segment(0x18),
    ss: segment(0x18),
    tr: segment(0x20),
    ldt: segment(0),
    gdt: { base: 0x500n, limit: 0x1f },
    idt: { base: 0x520n, limit: 0 },
    cr0: 0x80000011n,
    cr2: 0n,
    cr3: 0x9000n,
    cr4: 0x20n,
    cr8: 0n,
    efer: 0x500n,
    apicBase: 0xfee00900n,
    interruptBitmap: [1n, 0n, 0n, 1n << 63n],
  };
  const bytes = encodeSregs(sregs);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 312);
  assert.equal(view.getUint16(12, true), 0x10, "cs.selector");
  assert.equal(view.getUint8(14 + 5), 1, "cs.l");
  assert.equal(view.getBigUint64(192, true), 0x500n, "gdt.base");
  assert.equal(view.getUint16(200, true), 0x1f, "gdt.limit");
  assert.equal(view.getBigUint64(224, true), 0x80000011n, "cr0");
  assert.equal(view.getBigUint64(224 + 16, true), 0x9000n, "cr3");
  assert.equal(view.getBigUint64(224 + 40, true), 0x500n, "efer");
  assert.equal(view.getBigUint64(280 + 24, true), 1n << 63n, "interrupt_bitmap[3]");
  assert.deepEqual(decodeSregs(bytes), sregs);
});

Deno.test("kvm_fpu keeps FCW and MXCSR at their offsets", () => {
  const bytes = encodeFpu(resetFpu());
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 416);
  assert.equal(view.getUint16(128, true), 0x37f);
  assert.equal(view.getUint32(408, true), 0x1f80, "mxcsr, after the 16 XMM registers");
  assert.equal(view.getUint32(400, true), 0, "xmm15 is left alone");
  assert.deepEqual([decodeFpu(bytes).fcw, decodeFpu(bytes).mxcsr], [0x37f, 0x1f80]);
});
