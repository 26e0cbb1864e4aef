import assert from "node:assert/strict";
import { VcpuCpuTimes, type VcpuThreadInfo } from "./vcpu_cpu_time.ts";

/** A /proc stand-in: CPU time per thread id, undefined for a thread that is gone. */
function threads(times: Record<number, number>) {
  return (tid: number) => times[tid];
}

const WORKER = (id: number, tid: number): VcpuThreadInfo => ({ id, ownThread: true, tid });
const OFF_THREAD = (id: number): VcpuThreadInfo => ({ id, ownThread: false, tid: 0 });

Deno.test("VcpuCpuTimes.read() gives a Worker vCPU its thread's time and an off-thread vCPU none", () => {
  const times: Record<number, number> = { 101: 5e6, 102: 9e9 };
  const cpu = new VcpuCpuTimes(2, threads(times));
  // Thread 102 is a pool thread that once ran vCPU 1: its time is not vCPU 1's.
  assert.deepEqual(cpu.read([WORKER(0, 101), OFF_THREAD(1)]), [5e6, undefined]);
});

Deno.test("VcpuCpuTimes.read() never goes backwards: a thread that is gone keeps the last value", () => {
  const times: Record<number, number> = { 101: 7e6 };
  const cpu = new VcpuCpuTimes(1, threads(times));
  const live = [WORKER(0, 101)];
  assert.deepEqual(cpu.read(live), [7e6]);
  delete times[101]; // the Worker exited before the machine was closed
  assert.deepEqual(cpu.read(live), [7e6]);
  assert.deepEqual(cpu.read([WORKER(0, 0)]), [7e6], "a Worker whose tid is not known yet");
  assert.deepEqual(cpu.read([]), [7e6], "between machines");
});

Deno.test("VcpuCpuTimes carries a machine's time over a reboot, for Worker vCPUs only", () => {
  const times: Record<number, number> = { 101: 3e6, 201: 1e6 };
  const cpu = new VcpuCpuTimes(2, threads(times));
  cpu.machineEnded([WORKER(0, 101), OFF_THREAD(1)]);
  delete times[101];
  assert.deepEqual(cpu.read([]), [3e6, undefined]);
  // The next machine's vCPU 0 runs on a new thread that has used 1 ms so far.
  assert.deepEqual(cpu.read([WORKER(0, 201), OFF_THREAD(1)]), [4e6, undefined]);
  times[201] = 2e6;
  assert.deepEqual(cpu.read([WORKER(0, 201), OFF_THREAD(1)]), [5e6, undefined]);
});
