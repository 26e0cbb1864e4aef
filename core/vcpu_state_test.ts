import assert from "node:assert/strict";
import { encodeBase64, StateError } from "../common/persist.ts";
import { SAMPLE_SUPPORT, sampleVcpuState } from "./testing/kvm_state_samples.ts";
import { parseVcpuState, tscNeedsRescaling, type VcpuState, vcpuStateFrom } from "./vcpu_state.ts";

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

Deno.test("a vCPU state round-trips: parse(JSON(state)) gives back the same state", () => {
  for (const id of [0, 1, 7]) {
    const state = sampleVcpuState(id);
    assert.deepEqual(vcpuStateFrom(parseVcpuState(viaJson(state), id, SAMPLE_SUPPORT)), state);
  }
});

Deno.test("a vCPU state from a host without XSAVE, XCRs or debug registers keeps its nulls", () => {
  const state = { ...sampleVcpuState(), xsave: null, xcrs: null, debugregs: null };
  const support = { ...SAMPLE_SUPPORT, xsaveSize: 0, xcrs: false, debugregs: false };
  assert.deepEqual(vcpuStateFrom(parseVcpuState(viaJson(state), 0, support)), state);
});

Deno.test("a 4 KiB XSAVE area loads on a host with a bigger one, zero-extended", () => {
  const support = { ...SAMPLE_SUPPORT, xsaveSize: 11008 };
  const parts = parseVcpuState(viaJson(sampleVcpuState()), 0, support);
  assert.equal(parts.xsave?.length, 11008);
  assert.ok(parts.xsave?.subarray(4096).every((byte) => byte === 0));
});

function refuses(
  edit: (state: VcpuState) => void,
  path: string,
  reason: RegExp,
  support = SAMPLE_SUPPORT,
): void {
  const state = viaJson(sampleVcpuState());
  edit(state);
  assert.throws(() => parseVcpuState(state, 0, support), (error: unknown) => {
    assert.ok(error instanceof StateError, String(error));
    assert.equal(error.path, path);
    assert.match(error.message, reason);
    return true;
  });
}

Deno.test("parseVcpuState() refuses a state for another vCPU and malformed fields", () => {
  refuses((s) => s.id = 1, "state.id", /vCPU 1 cannot restore vCPU 0/);
  refuses((s) => s.cpuid = [], "state.cpuid", /none/);
  refuses((s) => s.cpuid[1].flags = 8, "state.cpuid[1].flags", /0\.\.7/);
  refuses((s) => s.regs.rip = "0x10000000000000000", "state.regs.rip", /64-bit/);
  refuses((s) => delete (s.regs as Partial<VcpuState["regs"]>).r15, "state.regs.r15", /string/);
  refuses((s) => s.sregs.cs.dpl = 4, "state.sregs.cs.dpl", /0\.\.3/);
  refuses((s) => s.sregs.gdt.limit = 0x10000, "state.sregs.gdt.limit", /0\.\.65535/);
  refuses((s) => s.sregs.interruptBitmap.pop(), "state.sregs.interruptBitmap", /4 words/);
  refuses((s) => s.fpu = s.fpu.slice(0, -8), "state.fpu", /416 bytes/);
  refuses((s) => s.lapic = "not base64!", "state.lapic", /base64/);
  refuses((s) => s.mpState = 5, "state.mpState", /0\.\.4/);
  refuses((s) => s.tscKhz = -1, "state.tscKhz", /integer/);
  refuses((s) => s.xcrs = [{ xcr: 1, value: "0x1" }], "state.xcrs[0].xcr", /0\.\.0/);
  refuses((s) => s.debugregs!.dr7 = "0x100000000", "state.debugregs.dr7", /above/);
  refuses((s) => s.events.flags = 0x40, "state.events.flags", /unknown flag/);
  refuses((s) => s.events.exception.nr = 32, "state.events.exception.nr", /0\.\.31/);
  refuses((s) => s.events.interrupt.shadow = 4, "state.events.interrupt.shadow", /0\.\.3/);
});

Deno.test("parseVcpuState() refuses MSRs outside the allowlist, and duplicates", () => {
  refuses((s) => s.msrs.push({ index: 0x1b, value: "0xfee00900" }), "state.msrs[6].index", /0x1b/);
  refuses((s) => s.msrs.push({ ...s.msrs[0] }), "state.msrs[6].index", /twice/);
  refuses((s) => s.msrs[2].value = "12.5", "state.msrs[2].value", /64-bit/);
});

Deno.test("parseVcpuState() refuses what this host cannot load, saying why", () => {
  refuses(() => {}, "state.xsave", /no KVM_CAP_XSAVE/, { ...SAMPLE_SUPPORT, xsaveSize: 0 });
  refuses(() => {}, "state.xcrs", /no KVM_CAP_XCRS/, { ...SAMPLE_SUPPORT, xcrs: false });
  refuses(() => {}, "state.debugregs", /DEBUGREGS/, { ...SAMPLE_SUPPORT, debugregs: false });
  refuses(
    (s) => s.xsave = encodeBase64(new Uint8Array(8192)),
    "state.xsave",
    /4096 to 4096/,
  );
  refuses((s) => s.xsave = encodeBase64(new Uint8Array(64)), "state.xsave", /got 64/);
});

Deno.test("tscNeedsRescaling() rescales beyond 250 ppm, and never an unknown frequency", () => {
  assert.equal(tscNeedsRescaling(2_600_000, 2_600_000), false);
  assert.equal(tscNeedsRescaling(2_600_000, 2_600_650), false, "exactly 250 ppm");
  assert.equal(tscNeedsRescaling(2_600_000, 2_600_651), true);
  assert.equal(tscNeedsRescaling(2_600_000, 3_000_000), true);
  assert.equal(tscNeedsRescaling(0, 3_000_000), false);
  assert.equal(tscNeedsRescaling(2_600_000, 0), false);
});
