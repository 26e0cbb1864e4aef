import assert from "node:assert/strict";
import { StateError } from "../common/persist.ts";
import { parseKvmState } from "./kvm_state.ts";
import { SAMPLE_SUPPORT, sampleVcpuState, sampleVmState } from "./testing/kvm_state_samples.ts";
import { vcpuStateFrom } from "./vcpu_state.ts";
import { vmStateFrom } from "./vm_state.ts";

const machineState = () => ({
  version: 1,
  vm: sampleVmState(),
  vcpus: [sampleVcpuState(0), sampleVcpuState(1)],
});
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

Deno.test("a machine's KVM state round-trips through parseKvmState()", () => {
  const state = machineState();
  const parts = parseKvmState(viaJson(state), [0, 1], SAMPLE_SUPPORT);
  assert.deepEqual(vmStateFrom(parts.vm), state.vm);
  assert.deepEqual(parts.vcpus.map(vcpuStateFrom), state.vcpus);
});

Deno.test("parseKvmState() refuses a state for a machine with other vCPUs", () => {
  const refusal = (ids: number[], path: string, reason: RegExp) =>
    assert.throws(() => parseKvmState(viaJson(machineState()), ids, SAMPLE_SUPPORT), (e) => {
      assert.ok(e instanceof StateError, String(e));
      assert.equal(e.path, path);
      assert.match(e.message, reason);
      return true;
    });
  refusal([0], "state.vcpus", /has 2 vCPUs, this machine 1/);
  refusal([0, 1, 2], "state.vcpus", /has 2 vCPUs, this machine 3/);
  refusal([1, 0], "state.vcpus[0].id", /vCPU 0 cannot restore vCPU 1/);
});

Deno.test("parseKvmState() names nested fields by their full path", () => {
  const state = viaJson(machineState());
  state.vcpus[1].mpState = 9;
  state.vm.pit.flags = 3;
  assert.throws(
    () => parseKvmState(state, [0, 1], SAMPLE_SUPPORT),
    (e) => e instanceof StateError && e.path === "state.vcpus[1].mpState",
  );
  state.vm.pics[0].poll = 2;
  assert.throws(
    () => parseKvmState(state, [0, 1], SAMPLE_SUPPORT),
    (e) => e instanceof StateError && e.path === "state.vm.pics[0].poll",
  );
});
