import assert from "node:assert/strict";
import { DenovisorError } from "../common/errors.ts";
import type { VcpuRunner } from "../core/vcpu_off_thread.ts";
import type { Vcpu } from "../core/vcpu.ts";
import { pauseAll } from "./machine.ts";

/** A runner that pauses at once, or (`stuck`) never leaves the guest: no kick reaches it. */
function fakeRunner(id: number, stuck: boolean) {
  const runner = {
    vcpu: { id } as Vcpu,
    done: new Promise<undefined>(() => {}),
    ownThread: false,
    tid: 0,
    exits: 0,
    state: "running" as VcpuRunner["state"],
    resumed: 0,
    pause(): Promise<void> {
      if (stuck) return new Promise(() => {});
      runner.state = "paused";
      return Promise.resolve();
    },
    resume(): void {
      runner.resumed++;
      runner.state = "running";
    },
    stop: () => Promise.resolve(),
  };
  return runner;
}

Deno.test("pauseAll() pauses every vCPU that answers", async () => {
  const runners = [fakeRunner(0, false), fakeRunner(1, false)];
  await pauseAll(runners, 1_000);
  assert.ok(runners.every((r) => r.state === "paused" && r.resumed === 0));
});

Deno.test("pauseAll() gives up on a vCPU that never leaves the guest: a timeout error naming it, and the VM runs on", async () => {
  const runners = [fakeRunner(0, false), fakeRunner(1, true), fakeRunner(2, false)];
  await assert.rejects(pauseAll(runners, 50), (error: unknown) => {
    assert.ok(error instanceof DenovisorError);
    assert.equal(error.code, "timeout");
    assert.match(error.message, /vCPU 1 did not leave KVM_RUN within 0.05 s/);
    return true;
  });
  assert.ok(runners.every((r) => r.state === "running" && r.resumed === 1));
});
