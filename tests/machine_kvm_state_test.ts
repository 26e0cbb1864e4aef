/**
 * A running 2-vCPU machine (the `ticks` PVH guest: PIT through the IOAPIC, the BSP halting
 * between interrupts, the AP never started) is paused, its KVM state saved while its
 * vCPU Workers are parked, and moved with its RAM and its UART into a second machine
 * built from the same config; the second machine's guest carries on counting where the
 * first stopped, without booting again. The machine-level save of devices by id is the
 * builder's (vmm/); this test moves only what the ticks guest uses.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { TextSink } from "./text_sink.ts";
import { Kvm } from "../core/kvm.ts";
import { restoreKvmState, saveKvmState } from "../core/kvm_state.ts";
import { vcpuStateSupport } from "../core/vcpu_state_support.ts";
import { buildMachine } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

kvmTest(
  "a paused machine's KVM state, RAM and UART move to a second machine and its ticks go on",
  async () => {
    using kvm = Kvm.open();
    const support = vcpuStateSupport(kvm);
    const kernel = await Deno.readFile(guest("ticks"));
    const config = (console: TextSink) => ({
      kernel,
      cmdline: "",
      memoryBytes: 32 * 1024 * 1024,
      cpus: 2,
      console,
    });
    const first = new TextSink();
    const second = new TextSink();
    const a = buildMachine(kvm, config(first));
    let b: Machine | undefined;
    try {
      a.start();
      await first.waitForTick(30, 60_000);
      await a.pause();
      assert.ok(a.vcpuStats.every((v) => v.state === "paused"), JSON.stringify(a.vcpuStats));
      const lastTick = Math.max(...first.ticks());
      const kvmState = viaJson(saveKvmState(a.vm, a.vcpus, support));
      const serialState = viaJson(a.serial.save());
      assert.equal(kvmState.vcpus.length, 2);

      b = buildMachine(kvm, config(second));
      for (const range of a.ram.ranges) {
        b.ram.memory.write(range.start, a.ram.memory.read(range.start, range.size));
      }
      restoreKvmState(b.vm, b.vcpus, kvmState, support);
      b.serial.restore(serialState);
      b.start();

      await second.waitForTick(lastTick + 20, 60_000);
      const ticks = second.ticks();
      assert.ok(ticks[0] > lastTick, `the count goes on from ${lastTick}: ${ticks.join(", ")}`);
      assert.deepEqual(ticks, [...ticks].sort((x, y) => x - y), "ticks only go up");
      assert.ok(!second.text.includes("ticks: PIT at"), `no second boot:\n${second.text}`);
    } finally {
      a.stop("test over");
      await a.close();
      if (b) {
        b.stop("test over");
        await b.close();
      }
    }
  },
  180_000,
);
