/**
 * A program for core/vcpu_off_thread_test.ts, run as a child process with only
 * --allow-ffi: Deno may not read /proc there, as under a VMM run without --allow-all. It
 * halts an off-thread vCPU in the kernel, pauses it (which needs its pool thread found
 * and signalled) and stops it, each within 5 s, and prints "paused and stopped".
 *
 * @module
 */

import { Bus } from "../bus.ts";
import { Kvm } from "../kvm.ts";
import { GuestRam } from "../memory.ts";
import { OffThreadVcpu } from "../vcpu_off_thread.ts";
import { enterRealModeAt } from "./real_mode.ts";

const CODE = 0x1000;

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      Deno.unrefTimer(timer);
    }),
  ]);
}

using kvm = Kvm.open();
using vm = kvm.createVm();
vm.setTssAddress(0xfffbd000);
vm.createIrqchip(); // hlt waits in KVM_RUN, in the kernel
using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
ram.memory.write(
  CODE,
  new Uint8Array([
    0xe6,
    0x70, // out 0x70, al
    0xfa, // cli
    0xf4, // hlt             (no interrupt can wake it: KVM_RUN blocks)
    0xeb,
    0xfd, // jmp hlt
  ]),
);
using vcpu = vm.createVcpu(0);
enterRealModeAt(vcpu, CODE);
let wrote = false;
const runner = new OffThreadVcpu(vcpu, ram.memory, () => wrote = true, () => new Bus());
try {
  while (!wrote) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 100)); // now halted in KVM_RUN
  await within(5_000, "pause of a halted vCPU", runner.pause());
  runner.resume();
  await within(5_000, "stop of a halted vCPU", runner.stop());
  console.log("paused and stopped");
} catch (error) {
  console.log(String(error));
  Deno.exit(1);
}
