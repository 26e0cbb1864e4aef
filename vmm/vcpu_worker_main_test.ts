/**
 * The vCPU Worker as the VMM starts it, without KVM: a Worker from the real entry module
 * (vmm/vcpu_worker_main.ts) runs a "vCPU" whose fd is /dev/null, so KVM_RUN fails with
 * ENOTTY and the Worker reports a vcpuError. That loads the entry module and core's worker
 * body for real (a module that fails to load would otherwise show only on a KVM host),
 * and drives the pause, resume and stop handshake, KVM_KVMCLOCK_CTRL included.
 */
import assert from "node:assert/strict";
import { installKickSignalHandler } from "../core/kick_signal.ts";
import { Vcpu } from "../core/vcpu.ts";
import { VcpuThread } from "../core/vcpu_thread.ts";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../ffi/libc_symbols.ts";
import { HostMapping } from "../ffi/mman.ts";
import { VCPU_WORKER_URL } from "./machine.ts";

/** A vCPU on /dev/null with a real kvm_run-sized area; ioctls on it fail with ENOTTY. */
function fakeVcpu(run: HostMapping): { vcpu: Vcpu; fd: number } {
  const fd = openFile("/dev/null", O_RDWR | O_CLOEXEC);
  return { vcpu: Vcpu.attach(0, fd, { pointer: run.address, size: run.size }), fd };
}

const noAccess = () => {
  throw new Error("no device access expected");
};

Deno.test("a vCPU Worker from the VMM's entry module reports a failing KVM_RUN as vcpuError", async () => {
  installKickSignalHandler();
  using run = HostMapping.anonymous(3 * 4096);
  const { vcpu, fd } = fakeVcpu(run);
  try {
    const thread = new VcpuThread(vcpu, [], noAccess, VCPU_WORKER_URL);
    const reason = await thread.done;
    assert.equal(reason?.kind, "vcpuError");
    assert.match(reason?.kind === "vcpuError" ? reason.message : "", /ioctl\(KVM_RUN\)/);
    assert.equal(thread.state, "stopped");
    await thread.stop();
  } finally {
    closeFd(fd);
  }
});

Deno.test("a vCPU Worker paused before it runs waits, then resumes into KVM_RUN", async () => {
  installKickSignalHandler();
  using run = HostMapping.anonymous(3 * 4096);
  const { vcpu, fd } = fakeVcpu(run);
  try {
    const thread = new VcpuThread(vcpu, [], noAccess, VCPU_WORKER_URL);
    // Asked in the same tick as the start, long before the Worker has loaded its module
    // and read its first request: it parks without running.
    await thread.pause();
    assert.equal(thread.state, "paused");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(thread.state, "paused", "a paused vCPU stays paused");
    // Resuming tells KVM about the pause (KVMCLOCK_CTRL, whose failure is ignored), then
    // runs: here KVM_RUN fails and the Worker ends with that error.
    thread.resume();
    const reason = await thread.done;
    assert.equal(reason?.kind, "vcpuError");
    await thread.stop();
  } finally {
    closeFd(fd);
  }
});

Deno.test("a paused vCPU Worker stops when asked, without running", async () => {
  installKickSignalHandler();
  using run = HostMapping.anonymous(3 * 4096);
  const { vcpu, fd } = fakeVcpu(run);
  try {
    const thread = new VcpuThread(vcpu, [], noAccess, VCPU_WORKER_URL);
    await thread.pause();
    await thread.stop();
    assert.equal(await thread.done, undefined, "a stop is no error");
    assert.equal(thread.state, "stopped");
  } finally {
    closeFd(fd);
  }
});
