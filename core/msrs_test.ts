import assert from "node:assert/strict";
import {
  isKvmParavirtualMsr,
  isPersistedMsr,
  MSR,
  MSR_IA32_TSC_DEADLINE,
  msrRestoreBatches,
  MTRR_MSRS,
  persistedMsrIndices,
  rearmedTscDeadline,
} from "./msrs.ts";

Deno.test("persistedMsrIndices() keeps the allowlisted MSRs KVM lists and adds the MTRRs", () => {
  const kvmList = [0x10, 0x1b, 0x3a, 0x174, 0xc0000081, 0x4b564d01, 0x6e0, 0x12, 0x40000000];
  const indices = persistedMsrIndices(kvmList);
  for (const kept of [0x10, 0x174, 0xc0000081, 0x4b564d01, 0x6e0, 0x12]) {
    assert.ok(indices.includes(kept), `0x${kept.toString(16)} kept`);
  }
  // APIC_BASE travels in sregs, FEATURE_CONTROL and Hyper-V MSRs not at all.
  for (const dropped of [0x1b, 0x3a, 0x40000000]) {
    assert.ok(!indices.includes(dropped), `0x${dropped.toString(16)} dropped`);
  }
  for (const mtrr of MTRR_MSRS) assert.ok(indices.includes(mtrr));
  assert.equal(MTRR_MSRS.length, 16 + 11 + 1);
  assert.deepEqual(indices, [...indices].sort((a, b) => a - b));
  assert.equal(new Set(persistedMsrIndices([...kvmList, ...MTRR_MSRS])).size, indices.length);
});

Deno.test("isPersistedMsr() refuses MSRs outside the allowlist", () => {
  assert.ok(isPersistedMsr(MSR.IA32_TSC));
  assert.ok(isPersistedMsr(0x277), "PAT");
  assert.ok(isPersistedMsr(0xc0000102), "KERNEL_GS_BASE");
  assert.ok(!isPersistedMsr(0x1b), "APIC_BASE");
  assert.ok(!isPersistedMsr(0x480), "VMX capabilities");
  assert.ok(!isPersistedMsr(0xffffffff));
  assert.ok(isPersistedMsr(0x4b564d07), "async PF ack");
  assert.ok(!isPersistedMsr(0x4b564df0), "PVM's own MSRs stay");
});

Deno.test("rearmedTscDeadline() replaces a zero deadline by the TSC only in TSC-deadline mode", () => {
  const msrs = [{ index: MSR.IA32_TSC, data: 5000n }, { index: MSR_IA32_TSC_DEADLINE, data: 0n }];
  const deadlineMode = 0x40020 | (2 << 17);
  assert.deepEqual(rearmedTscDeadline(msrs, deadlineMode)[1], {
    index: MSR_IA32_TSC_DEADLINE,
    data: 5000n,
  });
  assert.deepEqual(rearmedTscDeadline(msrs, 0x20), msrs, "one-shot mode: left alone");
  const armed = [msrs[0], { index: MSR_IA32_TSC_DEADLINE, data: 9000n }];
  assert.deepEqual(rearmedTscDeadline(armed, deadlineMode), armed, "an armed deadline stays");
});

Deno.test("msrRestoreBatches() writes IA32_TSC first and IA32_TSC_DEADLINE alone, last", () => {
  const msrs = [
    { index: 0x174, data: 1n },
    { index: MSR_IA32_TSC_DEADLINE, data: 7n },
    { index: 0x4b564d02, data: 0x41n }, // async PF enable
    { index: MSR.IA32_TSC, data: 2n },
    { index: 0x4b564d06, data: 0xf3n }, // async PF interrupt vector
  ];
  const batches = msrRestoreBatches(msrs);
  assert.deepEqual(batches.map((b) => b.map((m) => m.index)), [
    [MSR.IA32_TSC, 0x4b564d06, 0x174, 0x4b564d02],
    [MSR_IA32_TSC_DEADLINE],
  ]);
  assert.deepEqual(msrRestoreBatches([{ index: 0x174, data: 1n }]).length, 1);
});

Deno.test("msrRestoreBatches() leaves out a zero wall-clock MSR (KVM would write guest page 0)", () => {
  const msrs = [
    { index: 0x11, data: 0n },
    { index: 0x4b564d00, data: 0n },
    { index: 0x4b564d01, data: 0n },
    { index: 0x12, data: 0x9001n },
  ];
  assert.deepEqual(msrRestoreBatches(msrs), [[msrs[2], msrs[3]]]);
  const set = [{ index: 0x4b564d00, data: 0x7000n }];
  assert.deepEqual(msrRestoreBatches(set), [set]);
});

Deno.test("isKvmParavirtualMsr() covers both kvmclock interfaces, async PF, steal time, PV EOI, poll control", () => {
  assert.ok([0x11, 0x12, 0x4b564d00, 0x4b564d03, 0x4b564d07].every(isKvmParavirtualMsr));
  assert.ok(![0x10, 0x13, 0x4b564df0, 0x4b564e00, 0x277].some(isKvmParavirtualMsr));
});
