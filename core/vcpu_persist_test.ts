/**
 * The order of the ioctls a vCPU save and restore make, and their MSR rules, checked
 * against a recording stand-in for `Vcpu` (no KVM needed).
 */
import assert from "node:assert/strict";
import type { MsrEntry } from "../ffi/kvm/cpuid.ts";
import { decodeFpu } from "../ffi/kvm/regs.ts";
import { encodeVcpuEvents } from "../ffi/kvm/vcpu_state_structs.ts";
import { StateError } from "../common/persist.ts";
import { SAMPLE_SUPPORT, sampleVcpuState } from "./testing/kvm_state_samples.ts";
import type { Vcpu } from "./vcpu.ts";
import { restoreVcpu, saveVcpu, VcpuRestoreError } from "./vcpu_persist.ts";
import { parseVcpuState, type VcpuState } from "./vcpu_state.ts";

/** Answers the getters from a parsed state and records every call. */
class RecordingVcpu {
  readonly id = 0;
  readonly calls: string[] = [];
  readonly msrWrites: MsrEntry[][] = [];
  /** MSRs KVM "cannot read" or "refuses to write". */
  unreadable = new Set<number>();
  refused = new Set<number>();
  tscKhz = 2_600_000;
  readonly #parts = parseVcpuState(sampleVcpuState(), 0, SAMPLE_SUPPORT);

  #log<T>(name: string, value: T): T {
    this.calls.push(name);
    return value;
  }
  getMpState = () => this.#log("GET_MP_STATE", this.#parts.mpState);
  getRegs = () => this.#log("GET_REGS", this.#parts.regs);
  getSregs = () => this.#log("GET_SREGS", this.#parts.sregs);
  getFpu = () => this.#log("GET_FPU", decodeFpu(this.#parts.fpu));
  getXsave = () => this.#log("GET_XSAVE", this.#parts.xsave!);
  getXcrs = () => this.#log("GET_XCRS", this.#parts.xcrs!);
  getDebugRegs = () => this.#log("GET_DEBUGREGS", this.#parts.debugregs!);
  getLapic = () => this.#log("GET_LAPIC", this.#parts.lapic);
  // The table the VMM set (Vcpu.cpuidSet), not KVM_GET_CPUID2: see core/vcpu.ts.
  cpuidSet = () => this.#log("CPUID_SET", this.#parts.cpuid);
  getTscKhz = () => this.#log("GET_TSC_KHZ", this.tscKhz);
  getVcpuEvents = () => this.#log("GET_VCPU_EVENTS", encodeVcpuEvents(this.#parts.events));
  getMsrs = (indices: number[]): MsrEntry[] => {
    this.calls.push("GET_MSRS");
    // KVM stops at the first MSR it cannot read.
    const stop = indices.findIndex((index) => this.unreadable.has(index));
    return indices.slice(0, stop < 0 ? indices.length : stop).map((index) => ({
      index,
      data: this.#parts.msrs.find((m) => m.index === index)?.data ?? 0n,
    }));
  };
  setCpuid = () => this.#log("SET_CPUID2", undefined);
  setTscKhz = (khz: number) => this.#log(`SET_TSC_KHZ ${khz}`, undefined);
  setSregs = () => this.#log("SET_SREGS", undefined);
  setRegs = () => this.#log("SET_REGS", undefined);
  setFpu = () => this.#log("SET_FPU", undefined);
  setXsave = () => this.#log("SET_XSAVE", undefined);
  setXcrs = () => this.#log("SET_XCRS", undefined);
  setLapic = () => this.#log("SET_LAPIC", undefined);
  trySetMsrs = (entries: MsrEntry[]): number => {
    this.calls.push("SET_MSRS");
    this.msrWrites.push(entries);
    const stop = entries.findIndex((entry) => this.refused.has(entry.index));
    return stop < 0 ? entries.length : stop;
  };
  setVcpuEvents = () => this.#log("SET_VCPU_EVENTS", undefined);
  setDebugRegs = () => this.#log("SET_DEBUGREGS", undefined);
  setMpState = () => this.#log("SET_MP_STATE", undefined);
  notifyPaused = () => this.#log("KVMCLOCK_CTRL", undefined);
}

const asVcpu = (fake: RecordingVcpu) => fake as unknown as Vcpu;
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

Deno.test("restoreVcpu() loads in the order that works: LAPIC before MSRs, MP state last", () => {
  const fake = new RecordingVcpu();
  restoreVcpu(asVcpu(fake), viaJson(sampleVcpuState()), SAMPLE_SUPPORT);
  assert.deepEqual(fake.calls, [
    "SET_CPUID2",
    "GET_TSC_KHZ",
    "SET_SREGS",
    "SET_REGS",
    "SET_FPU",
    "SET_XSAVE",
    "SET_XCRS",
    "SET_LAPIC",
    "SET_MSRS",
    "SET_MSRS",
    "SET_VCPU_EVENTS",
    "SET_DEBUGREGS",
    "SET_MP_STATE",
    "KVMCLOCK_CTRL",
  ]);
  // IA32_TSC first; IA32_TSC_DEADLINE alone, after it.
  assert.equal(fake.msrWrites[0][0].index, 0x10);
  assert.deepEqual(fake.msrWrites[1].map((m) => m.index), [0x6e0]);
});

Deno.test("restoreVcpu() checks the whole state before its first ioctl", () => {
  const fake = new RecordingVcpu();
  const state = viaJson(sampleVcpuState()) as VcpuState;
  state.mpState = 7;
  assert.throws(() => restoreVcpu(asVcpu(fake), state, SAMPLE_SUPPORT), StateError);
  assert.deepEqual(fake.calls, []);
});

Deno.test("restoreVcpu() skips a zero paravirtual MSR KVM refuses, and stops at any other", () => {
  const state = viaJson(sampleVcpuState()) as VcpuState;
  state.msrs.push({ index: 0x4b564d03, value: "0x0" }); // steal time, off
  const fake = new RecordingVcpu();
  fake.refused.add(0x4b564d03);
  restoreVcpu(asVcpu(fake), state, SAMPLE_SUPPORT);
  const written = fake.msrWrites.flat().map((m) => m.index);
  assert.ok(written.includes(0x174) && written.includes(0x6e0), "the rest was written");

  const refusing = new RecordingVcpu();
  refusing.refused.add(0x277);
  assert.throws(
    () => restoreVcpu(asVcpu(refusing), viaJson(sampleVcpuState()), SAMPLE_SUPPORT),
    (e) => e instanceof VcpuRestoreError && /MSR 0x277/.test(e.message),
  );
  assert.ok(!refusing.calls.includes("SET_MP_STATE"), "nothing after the refusal");
});

Deno.test("restoreVcpu() rescales the TSC only when the host's frequency differs", () => {
  const fake = new RecordingVcpu();
  fake.tscKhz = 3_000_000;
  restoreVcpu(asVcpu(fake), viaJson(sampleVcpuState()), SAMPLE_SUPPORT);
  assert.ok(fake.calls.includes("SET_TSC_KHZ 2600000"));
  assert.ok(fake.calls.indexOf("SET_TSC_KHZ 2600000") < fake.calls.indexOf("SET_MSRS"));
});

Deno.test("saveVcpu() reads the MP state first and the events last, skipping unreadable MSRs", () => {
  const fake = new RecordingVcpu();
  fake.unreadable.add(0x175);
  const support = { ...SAMPLE_SUPPORT, msrIndices: [0x10, 0x174, 0x175, 0x176, 0x6e0] };
  const state = saveVcpu(asVcpu(fake), support);
  assert.equal(fake.calls[0], "GET_MP_STATE");
  assert.equal(fake.calls.at(-1), "GET_VCPU_EVENTS");
  assert.deepEqual(state.msrs.map((m) => m.index), [0x10, 0x174, 0x176, 0x6e0]);
  // The sample's timer is in TSC-deadline mode with a deadline set: it stays as saved.
  assert.equal(state.msrs.find((m) => m.index === 0x6e0)?.value, "0x124000000");
});

Deno.test("saveVcpu() gives back what the vCPU holds: the sample state, field for field", () => {
  const sample = sampleVcpuState();
  const support = { ...SAMPLE_SUPPORT, msrIndices: sample.msrs.map((m) => m.index) };
  assert.deepEqual(saveVcpu(asVcpu(new RecordingVcpu()), support), sample);
});
