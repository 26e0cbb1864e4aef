import assert from "node:assert/strict";
import { kvmTest } from "../tests/kvm_support.ts";
import { Kvm } from "./kvm.ts";
import { GuestRam } from "./memory.ts";
import { decodeExit, type VcpuExit } from "./vcpu_exit.ts";
import { kvmRun } from "../ffi/kvm/vcpu_run.ts";
import { KVM_EXIT, KVM_INTERNAL_ERROR, RUN } from "../ffi/kvm/run.ts";
import { enterRealModeAt } from "./testing/real_mode.ts";

const CODE = 0x1000;

/** Runs real-mode `code` at 0x1000 and returns the first `exits` exits, decoded. */
function runRealMode(code: number[], exits: number, irqchip = true): VcpuExit[] {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.setTssAddress(0xfffbd000);
  if (irqchip) vm.createIrqchip();
  using ram = GuestRam.allocate(vm, [{ start: 0, size: 0x10000 }]);
  ram.memory.write(CODE, new Uint8Array(code));
  using vcpu = vm.createVcpu(0);
  enterRealModeAt(vcpu, CODE);
  const seen: VcpuExit[] = [];
  for (let i = 0; i < exits; i++) {
    assert.equal(kvmRun(vcpu.fd), 0);
    const exit = decodeExit(vcpu.runBytes());
    // Copy the data out: the run page is reused by the next KVM_RUN.
    seen.push("data" in exit ? { ...exit, data: exit.data.slice() } as VcpuExit : exit);
  }
  return seen;
}

kvmTest("decodeExit() reports OUT with port, width and data", () => {
  const [byte, word] = runRealMode([
    0xb0,
    0x5a, //       mov al, 0x5a
    0xe6,
    0x80, //       out 0x80, al
    0xba,
    0xf8,
    0x03, // mov dx, 0x3f8
    0xb8,
    0x34,
    0x12, // mov ax, 0x1234
    0xef, //             out dx, ax
  ], 2);
  assert.deepEqual(byte, {
    kind: "io",
    direction: "out",
    port: 0x80,
    size: 1,
    count: 1,
    data: new Uint8Array([0x5a]),
  });
  assert.equal(word.kind, "io");
  if (word.kind !== "io") return;
  assert.deepEqual([word.port, word.size, [...word.data]], [0x3f8, 2, [0x34, 0x12]]);
});

kvmTest("decodeExit() reports IN as a read of the right width", () => {
  const [exit] = runRealMode([
    0x66,
    0xe5,
    0x70, // in eax, 0x70
  ], 1);
  assert.equal(exit.kind, "io");
  if (exit.kind !== "io") return;
  assert.deepEqual([exit.direction, exit.port, exit.size], ["in", 0x70, 4]);
});

kvmTest("decodeExit() reports rep outsb as one exit with count elements", () => {
  const [exit] = runRealMode([
    0xbe,
    0x00,
    0x20, // mov si, 0x2000 (zero-filled)
    0xb9,
    0x03,
    0x00, // mov cx, 3
    0xba,
    0xe9,
    0x00, // mov dx, 0xe9
    0xf3,
    0x6e, //       rep outsb
  ], 1);
  assert.equal(exit.kind, "io");
  if (exit.kind !== "io") return;
  assert.equal(exit.port, 0xe9);
  assert.ok(exit.count >= 1 && exit.count <= 3, `count ${exit.count}`);
  assert.equal(exit.data.length, exit.count);
});

kvmTest("decodeExit() reports an MMIO write outside RAM with address and data", () => {
  const [exit] = runRealMode([
    0xb8,
    0x00,
    0xd0, // mov ax, 0xd000
    0x8e,
    0xc0, //       mov es, ax       (es base 0xd0000, outside the 64 KiB of RAM)
    0x26,
    0xc7,
    0x06,
    0x10,
    0x00,
    0xef,
    0xbe, // mov word es:[0x10], 0xbeef
  ], 1);
  assert.equal(exit.kind, "mmio");
  if (exit.kind !== "mmio") return;
  assert.deepEqual([exit.isWrite, exit.address, [...exit.data]], [true, 0xd0010, [0xef, 0xbe]]);
});

kvmTest("decodeExit() reports HLT when no in-kernel irqchip handles it", () => {
  const [exit] = runRealMode([0xf4], 1, false);
  assert.deepEqual(exit, { kind: "hlt" });
});

Deno.test("decodeExit() returns the instruction bytes of an emulation failure", () => {
  const run = new Uint8Array(4096 * 3);
  const view = new DataView(run.buffer);
  view.setUint32(RUN.EXIT_REASON, KVM_EXIT.INTERNAL_ERROR, true);
  view.setUint32(RUN.INTERNAL_SUBERROR, KVM_INTERNAL_ERROR.EMULATION, true);
  view.setUint32(RUN.INTERNAL_NDATA, 3, true);
  view.setBigUint64(RUN.EMULATION_FLAGS, 1n, true);
  view.setUint8(RUN.EMULATION_INSN_SIZE, 3);
  run.set([0x0f, 0xae, 0x2f], RUN.EMULATION_INSN_BYTES); // xrstor [rdi]
  const exit = decodeExit(run);
  assert.equal(exit.kind, "internalError");
  if (exit.kind !== "internalError") return;
  assert.equal(exit.suberror, KVM_INTERNAL_ERROR.EMULATION);
  assert.deepEqual([...(exit.instruction ?? [])], [0x0f, 0xae, 0x2f]);
  view.setBigUint64(RUN.EMULATION_FLAGS, 0n, true);
  const withoutBytes = decodeExit(run);
  assert.equal(withoutBytes.kind === "internalError" && withoutBytes.instruction, undefined);
});

Deno.test("decodeExit() treats a malformed I/O exit as unknown instead of reading out of the page", () => {
  const run = new Uint8Array(4096 * 3);
  const view = new DataView(run.buffer);
  view.setUint32(RUN.EXIT_REASON, KVM_EXIT.IO, true);
  view.setUint8(RUN.IO_SIZE, 4);
  view.setUint32(RUN.IO_COUNT, 100000, true);
  view.setBigUint64(RUN.IO_DATA_OFFSET, 4096n, true);
  assert.equal(decodeExit(run).kind, "unknown");
  view.setUint8(RUN.IO_SIZE, 3);
  view.setUint32(RUN.IO_COUNT, 1, true);
  assert.equal(decodeExit(run).kind, "unknown");
});
