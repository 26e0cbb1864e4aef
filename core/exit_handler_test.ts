import assert from "node:assert/strict";
import { type ExitContext, handleExit, type Space } from "./exit_handler.ts";
import { Bus } from "./bus.ts";
import type { VcpuExit } from "./vcpu_exit.ts";
import type { FaultReport, VmEndReason } from "./vm_end.ts";
import { KVM_SYSTEM_EVENT } from "../ffi/kvm/run.ts";

const FAULT: FaultReport = {
  vcpu: 1,
  rip: 0x1234n,
  cpl: 0,
  mode: "long",
  instruction: new Uint8Array([0x0f, 0x0b]),
};

/**
 * Ports served on the vCPU thread, as the VMM's (vmm/local_ports.ts) behave: 0x80 reads all
 * ones and swallows writes; a write to 0xf4 ends the VM with the byte written.
 */
function localPorts(onEnd: (reason: VmEndReason) => void): Bus {
  const bus = new Bus();
  bus.insert(0x80, 1, "post-code", { read: (_, data) => data.fill(0xff), write: () => {} });
  bus.insert(0xf4, 4, "debug-exit", {
    read: (_, data) => data.fill(0xff),
    write: (_, data) => onEnd({ kind: "debugExit", status: data[0] }),
  });
  return bus;
}

function context() {
  const forwarded: Array<[Space, boolean, number, number[]]> = [];
  const ctx: ExitContext = {
    vcpu: 1,
    localPorts: localPorts((end: VmEndReason) => ctx.pendingEnd = end),
    forward(space, isWrite, address, data) {
      forwarded.push([space, isWrite, address, [...data]]);
      if (!isWrite) data.fill(0x42);
    },
    fault: (instruction) => ({ ...FAULT, instruction: instruction ?? FAULT.instruction }),
  };
  return { ctx, forwarded };
}

const io = (direction: "in" | "out", port: number, size: 1 | 2 | 4, bytes: number[]): VcpuExit => ({
  kind: "io",
  direction,
  port,
  size,
  count: bytes.length / size,
  data: new Uint8Array(bytes),
});

Deno.test("handleExit() serves port 0x80 on the vCPU thread and forwards the rest", () => {
  const { ctx, forwarded } = context();
  assert.deepEqual(handleExit(io("out", 0x80, 1, [0x12]), ctx), { kind: "resume" });
  assert.deepEqual(forwarded, []);
  assert.deepEqual(handleExit(io("out", 0x3f8, 1, [0x41]), ctx), { kind: "resume" });
  assert.deepEqual(forwarded, [["pio", true, 0x3f8, [0x41]]]);
});

Deno.test("handleExit() fills IN data from the device that served it", () => {
  const { ctx } = context();
  const local = io("in", 0x80, 1, [0]);
  handleExit(local, ctx);
  assert.deepEqual(local.kind === "io" && [...local.data], [0xff]);
  const remote = io("in", 0x3fd, 1, [0]);
  handleExit(remote, ctx);
  assert.deepEqual(remote.kind === "io" && [...remote.data], [0x42]);
});

Deno.test("handleExit() splits string I/O into one access per element", () => {
  const { ctx, forwarded } = context();
  handleExit(io("out", 0x3f8, 2, [1, 2, 3, 4, 5, 6]), ctx);
  assert.deepEqual(forwarded.map((f) => f[3]), [[1, 2], [3, 4], [5, 6]]);
});

Deno.test("handleExit() ends the VM with the debug-exit status", () => {
  const { ctx } = context();
  assert.deepEqual(handleExit(io("out", 0xf4, 1, [7]), ctx), {
    kind: "end",
    reason: { kind: "debugExit", status: 7 },
  });
});

Deno.test("handleExit() forwards MMIO and resumes after HLT and INTR", () => {
  const { ctx, forwarded } = context();
  const mmio: VcpuExit = {
    kind: "mmio",
    isWrite: true,
    address: 0xd0000000,
    data: new Uint8Array([1, 2, 3, 4]),
  };
  assert.equal(handleExit(mmio, ctx).kind, "resume");
  assert.deepEqual(forwarded, [["mmio", true, 0xd0000000, [1, 2, 3, 4]]]);
  assert.equal(handleExit({ kind: "hlt" }, ctx).kind, "resume");
  assert.equal(handleExit({ kind: "intr" }, ctx).kind, "resume");
});

Deno.test("handleExit() turns fatal exits into end reasons with a fault report", () => {
  const { ctx } = context();
  assert.deepEqual(handleExit({ kind: "shutdown" }, ctx), {
    kind: "end",
    reason: { kind: "tripleFault", fault: FAULT },
  });
  const bytes = new Uint8Array([0x0f, 0xae, 0x2f]);
  assert.deepEqual(
    handleExit({ kind: "internalError", suberror: 1, data: [], instruction: bytes }, ctx),
    {
      kind: "end",
      reason: { kind: "emulationFailure", suberror: 1, fault: { ...FAULT, instruction: bytes } },
    },
  );
  assert.deepEqual(handleExit({ kind: "failEntry", hardwareReason: 0x21n, cpu: 0 }, ctx), {
    kind: "end",
    reason: { kind: "failEntry", vcpu: 1, hardwareReason: 0x21n },
  });
  const reset = handleExit({ kind: "systemEvent", type: KVM_SYSTEM_EVENT.RESET, data: [] }, ctx);
  assert.deepEqual(reset, { kind: "end", reason: { kind: "reset", source: "system event" } });
  const unknown = handleExit({ kind: "unknown", reason: 99, hardwareReason: 0n }, ctx);
  assert.equal(unknown.kind === "end" && unknown.reason.kind, "vcpuError");
});
