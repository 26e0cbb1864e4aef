/** Pause and resume of a running guest through the Machine API. */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { Kvm } from "../core/kvm.ts";
import { buildMachine } from "../vmm/builder.ts";
import { TextSink } from "./text_sink.ts";

kvmTest("pause stops a running guest and resume lets its tick count go on", async () => {
  const sink = new TextSink();
  using kvm = Kvm.open();
  const machine = buildMachine(kvm, {
    kernel: await Deno.readFile(guest("ticks")),
    cmdline: "",
    memoryBytes: 64 * 1024 * 1024,
    cpus: 2,
    console: sink,
  });
  try {
    machine.start();
    await sink.waitFor(/tick 30\b/, 30_000);
    await machine.pause();
    assert.ok(
      machine.vcpuStats.every((v) => v.state === "paused"),
      JSON.stringify(machine.vcpuStats),
    );
    const atPause = sink.text.length;
    const lastTick = Math.max(...sink.ticks());
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sink.text.length, atPause, "no output while paused");

    machine.resume();
    await sink.waitForTick(lastTick + 20, 30_000);
    const ticks = sink.ticks();
    assert.deepEqual(ticks, [...ticks].sort((a, b) => a - b), "ticks only go up");
    assert.ok(machine.vcpuStats.every((v) => v.state === "running"));
  } finally {
    machine.stop("test over");
    await machine.close();
  }
});

kvmTest("stop ends a guest that never exits on its own, and close releases it", async () => {
  const sink = new TextSink();
  using kvm = Kvm.open();
  const machine = buildMachine(kvm, {
    kernel: await Deno.readFile(guest("ticks")),
    cmdline: "",
    memoryBytes: 32 * 1024 * 1024,
    cpus: 1,
    console: sink,
  });
  machine.start();
  await sink.waitFor(/tick 10\b/, 30_000);
  machine.stop("test");
  assert.deepEqual(await machine.ended, { kind: "stopped", source: "test" });
  await machine.close();
  await machine.close(); // idempotent
});
