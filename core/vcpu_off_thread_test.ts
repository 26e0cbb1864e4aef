/** A vCPU run by off-thread KVM_RUN calls: exits, pause, resume and stop on a real VM. */
import assert from "node:assert/strict";
import { kvmTest } from "../tests/kvm_support.ts";
import { Bus } from "./bus.ts";
import { Kvm } from "./kvm.ts";
import { GuestRam } from "./memory.ts";
import { OffThreadVcpu, unexplainedFailures } from "./vcpu_off_thread.ts";
import type { Vcpu } from "./vcpu.ts";
import type { Vm } from "./vm.ts";
import type { VmEndReason } from "./vm_end.ts";
import type { LocalPortBusFactory } from "./vcpu_worker.ts";
import { enterRealModeAt } from "./testing/real_mode.ts";
import { isIoctlLine, threadsInIoctl } from "../ffi/thread.ts";
import { KVM } from "../ffi/kvm/ioctls.ts";

const CODE = 0x1000;
const END_PORT = 0xf4;

/** A real-mode vCPU at CODE running `code`. */
function realModeVcpu(vm: Vm, ram: GuestRam, code: number[]): Vcpu {
  ram.memory.write(CODE, new Uint8Array(code));
  const vcpu = vm.createVcpu(0);
  enterRealModeAt(vcpu, CODE);
  return vcpu;
}

/** A local port at END_PORT that ends the VM with the byte written there. */
const endPortBus: LocalPortBusFactory = (onEnd) => {
  const bus = new Bus();
  bus.insert(END_PORT, 1, "end", {
    read: () => {},
    write: (_offset, data) => onEnd({ kind: "stopped", source: `port ${data[0]}` }),
  });
  return bus;
};

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

kvmTest(
  "an off-thread vCPU forwards its port reads and writes in order and ends on a local port",
  async () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    vm.setTssAddress(0xfffbd000);
    using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
    using vcpu = realModeVcpu(vm, ram, [
      0xb0,
      0x05, // mov al, 5
      0xe6,
      0x70, // out 0x70, al   (forwarded write: 5)
      0xe4,
      0x71, // in al, 0x71    (forwarded read: the handler answers 0x2a)
      0xe6,
      0x72, // out 0x72, al   (forwarded write: 0x2a, so the read completed)
      0xe4,
      0x73, // in al, 0x73    (nobody answers: the bus floats high, 0xff)
      0xe6,
      0x74, // out 0x74, al   (0xff)
      0xe6,
      0xf4, // out 0xf4, al   (the local port ends the VM: never forwarded)
    ]);
    const seen: string[] = [];
    const runner = new OffThreadVcpu(vcpu, ram.memory, (space, isWrite, address, data) => {
      seen.push(`${space} ${isWrite ? "out" : "in"} 0x${address.toString(16)} ${data[0]}`);
      if (!isWrite && address === 0x71) data[0] = 0x2a;
    }, endPortBus);
    const reason = await within(10_000, "the guest's end", runner.done);
    assert.deepEqual(reason, { kind: "stopped", source: "port 255" } satisfies VmEndReason);
    assert.deepEqual(seen, [
      "pio out 0x70 5",
      "pio in 0x71 255",
      "pio out 0x72 42",
      "pio in 0x73 255",
      "pio out 0x74 255",
    ]);
    assert.equal(runner.exits, 6);
    assert.equal(runner.state, "stopped");
    await runner.stop(); // idempotent after the end
  },
);

kvmTest(
  "an off-thread vCPU halted in the kernel is kicked to pause, saved, resumed and stopped",
  async () => {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    vm.setTssAddress(0xfffbd000);
    vm.createIrqchip(); // hlt then waits in KVM_RUN, in the kernel
    using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
    using vcpu = realModeVcpu(vm, ram, [
      0xe6,
      0x70, // out 0x70, al
      0xfa, // cli
      0xf4, // hlt             (no interrupt can wake it: KVM_RUN blocks)
      0xeb,
      0xfd, // jmp hlt
    ]);
    const writes: number[] = [];
    const runner = new OffThreadVcpu(vcpu, ram.memory, (_s, isWrite, address) => {
      if (isWrite) writes.push(address);
    }, endPortBus);
    try {
      // The pool thread blocked in KVM_RUN on this vCPU's fd is found through /proc.
      const deadline = Date.now() + 10_000;
      let pool: number[] = [];
      while ((pool = threadsInIoctl(vcpu.fd, KVM.RUN)).length === 0 || writes.length === 0) {
        assert.ok(Date.now() < deadline, "the vCPU never blocked in KVM_RUN");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.notEqual(pool[0], Deno.pid, "KVM_RUN runs off the calling thread");
      // That pool thread is not the vCPU's own: its CPU time is not passed off as the vCPU's.
      assert.equal(runner.ownThread, false);
      assert.equal(runner.tid, 0);
      await within(5_000, "pause of a halted vCPU", runner.pause());
      assert.equal(runner.state, "paused");
      // Paused: this thread may use the vCPU's fd (the loop does not touch it now).
      const rip = Number(vcpu.getRegs().rip);
      assert.ok(rip >= CODE + 3 && rip <= CODE + 6, `rip 0x${rip.toString(16)} at the hlt loop`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(runner.state, "paused", "a paused vCPU stays paused");
      runner.resume();
      const again = Date.now() + 5_000;
      while ((runner.state as string) !== "running") {
        assert.ok(Date.now() < again, "the vCPU did not run again");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await within(5_000, "pause again", runner.pause());
      runner.resume();
      await within(5_000, "stop of a halted vCPU", runner.stop());
      assert.equal(runner.state, "stopped");
      assert.equal(await runner.done, undefined, "a stop is no reason to end the VM");
      assert.deepEqual(writes, [0x70], "the guest ran once, from its start");
    } finally {
      await runner.stop();
    }
  },
);

kvmTest(
  "a halted off-thread vCPU is paused and stopped when Deno may not read /proc (kicks found through libc, said once)",
  async () => {
    // Without --allow-read, Deno.readDirSync("/proc/self/task") throws NotCapable: the
    // pool thread in KVM_RUN must still be found and signalled, or the pause hangs.
    const device = Deno.env.get("DENOVISOR_KVM_DEVICE") || "/dev/kvm";
    const program = new URL("./testing/pause_halted_off_thread.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-ffi", "--allow-env", `--allow-read=${device}`, program],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `${out}\n${err}`);
    assert.match(out, /paused and stopped/);
    assert.equal(err.match(/Cannot list this process's threads/g)?.length, 1, err);
  },
);

kvmTest("an off-thread vCPU spinning in guest code is paused and stopped", async () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.setTssAddress(0xfffbd000);
  using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
  using vcpu = realModeVcpu(vm, ram, [0xeb, 0xfe]); // jmp $
  const runner = new OffThreadVcpu(vcpu, ram.memory, () => {}, endPortBus);
  try {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await within(5_000, "pause of a spinning vCPU", runner.pause());
    assert.equal(Number(vcpu.getRegs().rip), CODE);
    runner.resume();
    await within(5_000, "stop of a spinning vCPU", runner.stop());
    assert.equal(await runner.done, undefined);
  } finally {
    await runner.stop();
  }
});

Deno.test("isIoctlLine() matches a thread blocked in ioctl(fd, request) and nothing else", () => {
  const run = KVM.RUN;
  assert.equal(isIoctlLine("16 0x1b 0xae80 0x0 0x0 0x0 0x0 0x7f00 0x7f01\n", 0x1b, run), true);
  assert.equal(isIoctlLine("16 0x1c 0xae80 0x0 0x0 0x0 0x0 0x7f00 0x7f01", 0x1b, run), false);
  assert.equal(isIoctlLine("16 0x1b 0xae81 0x0 0x0 0x0 0x0 0x7f00 0x7f01", 0x1b, run), false);
  assert.equal(isIoctlLine("232 0x1b 0xae80 0x0 0x0 0x0 0x0 0x7f00 0x7f01", 0x1b, run), false);
  assert.equal(isIoctlLine("running\n", 0x1b, run), false);
  assert.equal(isIoctlLine("-1 0x7f00 0x7f01\n", 0x1b, run), false);
  assert.equal(isIoctlLine("16 zz 0xae80", 0x1b, run), false);
});

Deno.test("unexplainedFailures() names the exit reason KVM left on the last failed KVM_RUN", () => {
  assert.match(unexplainedFailures(100, 39), /100 times .*KVM_EXIT_MEMORY_FAULT \(39\)/);
  assert.match(unexplainedFailures(100, 17), /KVM_EXIT_INTERNAL_ERROR \(17\)/);
  assert.match(unexplainedFailures(100, 1234), /exit_reason 1234/);
  assert.match(unexplainedFailures(100, 0xffff_ffff), /KVM left no exit reason/);
});
