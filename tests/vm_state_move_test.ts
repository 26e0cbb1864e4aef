/**
 * The KVM-level state of a running guest moves to a second VM in the same process: a
 * real-mode loop runs a few iterations in VM 1, its VM and vCPU states (through JSON)
 * and a copy of its RAM go into VM 2, VM 2's state reads back the same (the TSC and
 * kvmclock within a tolerance: they run), and the guest carries on from where it was.
 * Everything runs on this thread, as the C program of HOST_FACTS.md did.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { Kvm } from "../core/kvm.ts";
import { GuestRam } from "../core/memory.ts";
import { KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS } from "../core/layout.ts";
import { MSR } from "../core/msrs.ts";
import { configureVcpu } from "../core/vcpu_setup.ts";
import type { VcpuState } from "../core/vcpu_state.ts";
import { vcpuStateSupport } from "../core/vcpu_state_support.ts";
import { decodeExit } from "../core/vcpu_exit.ts";
import { Vm } from "../core/vm.ts";
import type { VmState } from "../core/vm_state.ts";
import { kvmRun } from "../ffi/kvm/vcpu_run.ts";
import { emptyRegs } from "../ffi/kvm/regs.ts";

const RAM_SIZE = 0x10000;
const CODE = 0x1000;
const COUNTER = 0x2000;
const PORT = 0xf4;

// 16-bit real mode, CS base 0:
const LOOP = new Uint8Array([
  0x66,
  0x43, //                   inc ebx
  0x66,
  0x89,
  0x1e,
  0x00,
  0x20, // mov [0x2000], ebx
  0xe6,
  PORT, //                   out 0xf4, al   (an exit to user space)
  0xeb,
  0xf5, //                   jmp 0x1000
]);

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

/** A VM as core/machine.ts sets one up (irqchip, routing, PIT), with one vCPU. */
function buildVm(kvm: Kvm) {
  const vm = kvm.createVm();
  vm.setTssAddress(KVM_TSS_ADDRESS);
  vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
  vm.createIrqchip();
  vm.setGsiRouting(Vm.defaultRoutes());
  vm.createPit();
  const ram = GuestRam.allocate(vm, [{ start: 0, size: RAM_SIZE }]);
  const vcpu = vm.createVcpu(0);
  configureVcpu(vcpu, kvm.supportedCpuid(), 1);
  return { vm, ram, vcpu };
}

/** Runs until the guest's next `out`; returns the port. */
function runToExit(vcpu: { fd: number; runBytes(): Uint8Array }): number {
  assert.equal(kvmRun(vcpu.fd), 0, "KVM_RUN");
  const exit = decodeExit(vcpu.runBytes());
  assert.equal(exit.kind, "io", JSON.stringify(exit));
  return exit.kind === "io" ? exit.port : -1;
}

const msrValue = (state: VcpuState, index: number) =>
  BigInt(state.msrs.find((m) => m.index === index)?.value ?? "0");

kvmTest("a running guest's VM and vCPU state moves to a second VM and the guest goes on", () => {
  using kvm = Kvm.open();
  const support = vcpuStateSupport(kvm);
  assert.ok(support.msrIndices.includes(MSR.IA32_TSC), "KVM lists IA32_TSC");

  const one = buildVm(kvm);
  using _vm1 = one.vm;
  using _ram1 = one.ram;
  using _vcpu1 = one.vcpu;
  one.ram.memory.write(CODE, LOOP);
  const sregs = one.vcpu.getSregs();
  sregs.cs.base = 0n;
  sregs.cs.selector = 0;
  one.vcpu.setSregs(sregs);
  const regs = emptyRegs();
  regs.rip = BigInt(CODE);
  one.vcpu.setRegs(regs);
  for (let i = 0; i < 5; i++) assert.equal(runToExit(one.vcpu), PORT);
  // Complete the last `out` without running the guest, as a pausing vCPU Worker does.
  one.vcpu.setImmediateExit(true);
  assert.equal(kvmRun(one.vcpu.fd), -1, "KVM_RUN returns EINTR");
  one.vcpu.setImmediateExit(false);

  const vmState: VmState = viaJson(one.vm.save());
  const vcpuState: VcpuState = viaJson(one.vcpu.save(support));
  assert.equal(BigInt(vcpuState.regs.rbx), 5n);
  assert.equal(BigInt(vcpuState.regs.rip), BigInt(CODE + 9), "past the completed out");
  assert.equal(one.ram.memory.readU32(COUNTER), 5);

  const two = buildVm(kvm);
  using _vm2 = two.vm;
  using _ram2 = two.ram;
  using _vcpu2 = two.vcpu;
  two.ram.memory.write(0, one.ram.memory.read(0, RAM_SIZE));
  two.vm.restore(vmState);
  two.vcpu.restore(vcpuState, support);

  // Read back: the same state, but for what runs on its own (kvmclock and the TSC).
  const vmAgain: VmState = viaJson(two.vm.save());
  const vcpuAgain: VcpuState = viaJson(two.vcpu.save(support));
  const elapsed = BigInt(vmAgain.clock.clock) - BigInt(vmState.clock.clock);
  assert.ok(elapsed > -1_000_000n && elapsed < 60_000_000_000n, `kvmclock moved by ${elapsed} ns`);
  assert.deepEqual(
    { ...vmAgain, clock: null },
    { ...vmState, clock: null },
    "PIT, PICs and IOAPIC read back as saved",
  );
  // KVM may match a TSC written within a second of its expected value to that value
  // (its TSC-synchronization heuristic): a loose bound, the guest ran for milliseconds.
  const tscDrift = msrValue(vcpuAgain, MSR.IA32_TSC) - msrValue(vcpuState, MSR.IA32_TSC);
  assert.ok(tscDrift > -(1n << 38n) && tscDrift < 1n << 38n, `TSC moved by ${tscDrift}`);
  const withoutTsc = (state: VcpuState) => ({
    ...state,
    msrs: state.msrs.filter((m) => m.index !== MSR.IA32_TSC),
  });
  assert.deepEqual(withoutTsc(vcpuAgain), withoutTsc(vcpuState), "the vCPU reads back as saved");

  // The guest carries on in VM 2 from its sixth iteration.
  assert.equal(runToExit(two.vcpu), PORT);
  assert.equal(two.vcpu.getRegs().rbx, 6n);
  assert.equal(two.ram.memory.readU32(COUNTER), 6);
}, 60_000);

kvmTest(
  "Vm.restore() loads the PIT after the vCPUs' states: a tick fired before the local " +
    "APICs are loaded would be wiped and the PIT, waiting for its acknowledgement, stop",
  () => {
    using kvm = Kvm.open();
    const one = buildVm(kvm);
    using _vm1 = one.vm;
    using _ram1 = one.ram;
    using _vcpu1 = one.vcpu;
    const saved: VmState = viaJson(one.vm.save());
    // Channel 0 as a guest programs it for 100 Hz: mode 2 (rate generator), 11932.
    saved.pit.channels[0] = { ...saved.pit.channels[0], count: 11932, mode: 2, rwMode: 3 };

    const two = buildVm(kvm);
    using _vm2 = two.vm;
    using _ram2 = two.ram;
    using _vcpu2 = two.vcpu;
    const before: VmState = viaJson(two.vm.save());
    assert.notEqual(before.pit.channels[0].count, 11932);
    let during: VmState | undefined;
    two.vm.restore(saved, () => during = viaJson(two.vm.save()));
    assert.ok(during !== undefined, "between() ran");
    assert.deepEqual(during.pit, before.pit, "the PIT is not loaded while the vCPUs are");
    assert.deepEqual(during.ioapic, saved.ioapic, "the irqchips are, before them");
    const after: VmState = viaJson(two.vm.save());
    assert.equal(after.pit.channels[0].count, 11932, "then the PIT");
    assert.equal(after.pit.channels[0].mode, 2);
  },
  60_000,
);
