/** ioeventfd and irqfd on a real VM. */
import assert from "node:assert/strict";
import { kvmTest } from "../tests/kvm_support.ts";
import { Kvm } from "./kvm.ts";
import { GuestRam } from "./memory.ts";
import { decodeExit } from "./vcpu_exit.ts";
import { EventFd } from "../ffi/eventfd.ts";
import { ioctlWithValue } from "../ffi/fs.ts";
import { KVM } from "../ffi/kvm/ioctls.ts";
import { enterRealModeAt } from "./testing/real_mode.ts";

kvmTest("a guest write caught by an ioeventfd signals it without a user-space exit", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.setTssAddress(0xfffbd000);
  vm.createIrqchip();
  using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
  using notify = new EventFd();
  using matched = new EventFd();
  vm.registerIoeventfd({ address: 0x90, length: 1, fd: notify.fd, pio: true });
  vm.registerIoeventfd({ address: 0x91, length: 1, fd: matched.fd, pio: true, datamatch: 7n });
  ram.memory.write(
    0x1000,
    new Uint8Array([
      0xe6,
      0x90, // out 0x90, al     (al = 0: caught)
      0xe6,
      0x90, // out 0x90, al     (caught again)
      0xe6,
      0x91, // out 0x91, al     (al = 0: datamatch 7 fails, exits to user space)
      0xb0,
      0x07, // mov al, 7
      0xe6,
      0x91, // out 0x91, al     (caught)
      0xe6,
      0xf4, // out 0xf4, al     (exits)
    ]),
  );
  using vcpu = vm.createVcpu(0);
  enterRealModeAt(vcpu, 0x1000);
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    assert.equal(ioctlWithValue(vcpu.fd, KVM.RUN, 0n), 0);
    const exit = decodeExit(vcpu.runBytes());
    if (exit.kind === "io") ports.push(exit.port);
  }
  assert.deepEqual(ports, [0x91, 0xf4], "only the unmatched and unregistered writes exit");
  assert.equal(notify.take(), 2n);
  assert.equal(matched.take(), 1n);
  vm.unregisterIoeventfd({ address: 0x90, length: 1, fd: notify.fd, pio: true });
});

kvmTest("irqfds attach to and detach from GSIs of the in-kernel irqchip", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.createIrqchip();
  using line = new EventFd();
  vm.registerIrqfd(line.fd, 5);
  assert.throws(() => vm.registerIrqfd(line.fd, 5), /KVM_IRQFD.*EBUSY|EEXIST/);
  line.signal();
  vm.unregisterIrqfd(line.fd, 5);
  vm.registerIrqfd(line.fd, 5);
});
