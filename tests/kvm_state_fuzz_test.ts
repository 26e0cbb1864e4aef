/**
 * Restore of the KVM-level states (`Vm`, `Vcpu`) fuzzed with malformed states. Their
 * validation is a pure function that runs before any ioctl (core/vm_state.ts,
 * core/vcpu_state.ts), so the fuzzer drives it without KVM: a target that "restores" by
 * parsing and "saves" by re-encoding what it parsed.
 */
import assert from "node:assert/strict";
import { fuzzRestore } from "../devices/testing/persist_fuzz.ts";
import {
  SAMPLE_SUPPORT,
  sampleVcpuState,
  sampleVmState,
} from "../core/testing/kvm_state_samples.ts";
import { parseVcpuState, vcpuStateFrom } from "../core/vcpu_state.ts";
import { parseVmState, vmStateFrom } from "../core/vm_state.ts";
import { parseKvmState } from "../core/kvm_state.ts";

Deno.test("Vm state restore refuses malformed states with StateError only", () => {
  let current: unknown = sampleVmState();
  const report = fuzzRestore(
    {
      save: () => current,
      restore: (state) => current = vmStateFrom(parseVmState(state)),
    },
    sampleVmState(),
    { iterations: 2000, seed: 9, lenient: ["state.clock.realtime"] },
  );
  assert.ok(report.refused > 100, `refused ${report.refused} of ${report.tried}`);
});

Deno.test("Vcpu state restore refuses malformed states with StateError only", () => {
  let current: unknown = sampleVcpuState(1);
  const report = fuzzRestore(
    {
      save: () => current,
      restore: (state) => current = vcpuStateFrom(parseVcpuState(state, 1, SAMPLE_SUPPORT)),
    },
    sampleVcpuState(1),
    { iterations: 3000, seed: 11, lenient: ["state.xsave"] },
  );
  assert.ok(report.refused > 300, `refused ${report.refused} of ${report.tried}`);
});

Deno.test("a machine's KVM state (VM and two vCPUs) refuses malformed states with StateError only", () => {
  const good = { version: 1, vm: sampleVmState(), vcpus: [sampleVcpuState(0), sampleVcpuState(1)] };
  let current: unknown = good;
  const report = fuzzRestore(
    {
      save: () => current,
      restore: (state) => {
        const parts = parseKvmState(state, [0, 1], SAMPLE_SUPPORT);
        current = { version: 1, vm: vmStateFrom(parts.vm), vcpus: parts.vcpus.map(vcpuStateFrom) };
      },
    },
    good,
    {
      iterations: 1000,
      seed: 13,
      lenient: ["state.vcpus[0].xsave", "state.vcpus[1].xsave", "state.vm.clock.realtime"],
    },
  );
  assert.ok(report.refused > 300, `refused ${report.refused} of ${report.tried}`);
});
