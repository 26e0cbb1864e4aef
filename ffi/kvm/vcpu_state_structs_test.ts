import assert from "node:assert/strict";
import {
  decodeDebugRegs,
  decodeMsrList,
  decodeVcpuEvents,
  decodeXcrs,
  encodeDebugRegs,
  encodeVcpuEvents,
  encodeXcrs,
  msrListBuffer,
  type VcpuEvents,
} from "./vcpu_state_structs.ts";

// Offsets below were printed with offsetof() from <linux/kvm.h> on x86-64.

Deno.test("kvm_vcpu_events round-trips with sipi_vector at 16, flags at 20, payload at 56", () => {
  const events: VcpuEvents = {
    exception: { injected: 1, nr: 14, hasErrorCode: 1, pending: 0, errorCode: 0x2 },
    interrupt: { injected: 1, nr: 0x20, soft: 0, shadow: 1 },
    nmi: { injected: 0, pending: 1, masked: 1 },
    sipiVector: 0x9a,
    flags: 0x5,
    smi: { smm: 0, pending: 0, smmInsideNmi: 0, latchedInit: 1 },
    tripleFaultPending: 0,
    exceptionHasPayload: 1,
    exceptionPayload: 0xdead_beef_0000n,
  };
  const bytes = encodeVcpuEvents(events);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 64);
  assert.equal(bytes[1], 14, "exception.nr");
  assert.equal(view.getUint32(4, true), 2, "exception.error_code");
  assert.equal(bytes[9], 0x20, "interrupt.nr");
  assert.equal(bytes[13], 1, "nmi.pending");
  assert.equal(view.getUint32(16, true), 0x9a, "sipi_vector");
  assert.equal(view.getUint32(20, true), 5, "flags");
  assert.equal(bytes[27], 1, "smi.latched_init");
  assert.equal(bytes[55], 1, "exception_has_payload");
  assert.equal(view.getBigUint64(56, true), 0xdead_beef_0000n);
  assert.deepEqual(decodeVcpuEvents(bytes), events);
});

Deno.test("kvm_debugregs has DR0-3 first, then dr6 at 32 and dr7 at 40", () => {
  const regs = { db: [1n, 2n, 3n, 4n], dr6: 0xffff0ff0n, dr7: 0x400n };
  const bytes = encodeDebugRegs(regs);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 128);
  assert.equal(view.getBigUint64(24, true), 4n);
  assert.equal(view.getBigUint64(32, true), 0xffff0ff0n);
  assert.equal(view.getBigUint64(40, true), 0x400n);
  assert.equal(view.getBigUint64(48, true), 0n, "flags");
  assert.deepEqual(decodeDebugRegs(bytes), regs);
});

Deno.test("kvm_xcrs counts its 16-byte entries and caps a bogus count at KVM_MAX_XCRS", () => {
  const bytes = encodeXcrs([{ xcr: 0, value: 0x7n }]);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 392);
  assert.equal(view.getUint32(0, true), 1);
  assert.equal(view.getBigUint64(16, true), 7n, "xcrs[0].value");
  assert.deepEqual(decodeXcrs(bytes), [{ xcr: 0, value: 7n }]);
  view.setUint32(0, 1000, true);
  assert.equal(decodeXcrs(bytes).length, 16);
});

Deno.test("kvm_msr_list decodes what KVM wrote and never reads past the buffer", () => {
  const bytes = msrListBuffer(4);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(0, true), 4, "the capacity goes in nmsrs");
  view.setUint32(0, 2, true);
  view.setUint32(4, 0x10, true);
  view.setUint32(8, 0x4b564d01, true);
  assert.deepEqual(decodeMsrList(bytes), [0x10, 0x4b564d01]);
  view.setUint32(0, 99, true);
  assert.equal(decodeMsrList(bytes).length, 4);
});
