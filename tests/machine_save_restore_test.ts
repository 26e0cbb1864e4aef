/**
 * Save and restore through the builder: a running 2-vCPU machine (the `ticks` PVH guest:
 * PIT through the IOAPIC, its count in guest RAM) is paused and saved to a state file
 * and a memory file, closed, and restored into a new machine in the same process from
 * those files (RAM mapped from the memory file); the restored guest counts on from where
 * it stopped without booting again. The same with RAM inline in the state file and the
 * restored machine started paused, then resumed. (tests/machine_kvm_state_test.ts moves
 * the KVM state alone, in memory; this is the same move through files and every device.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { TextSink } from "./text_sink.ts";
import { Kvm } from "../core/kvm.ts";
import { build, loadBootImage, restore } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";

const config = (): VmmMachineConfig => ({
  vcpus: 2,
  memoryBytes: 32 * 1024 * 1024,
  boot: { kind: "linux", kernel: guest("ticks"), cmdline: "" },
  disks: [],
  nics: [],
  balloon: false,
});

/** Runs a machine until tick 30, pauses and saves it; returns the last tick it printed. */
async function runAndSave(
  kvm: Kvm,
  target: { stateFile: string; inline?: boolean },
): Promise<{ lastTick: number; memoryFile?: string }> {
  const boot = await loadBootImage(config().boot);
  const console = new TextSink();
  const machine = build(config(), { kvm, console, boot });
  try {
    machine.start();
    await console.waitForTick(30, 60_000);
    await machine.pause();
    assert.ok(machine.isPaused, JSON.stringify(machine.vcpuStats));
    const saved = await saveMachine(machine, config(), kvm, target);
    assert.ok(saved.stateBytes > 0);
    assert.ok(saved.memoryDataBytes > 0, "the guest's pages were written");
    return { lastTick: Math.max(...console.ticks()), memoryFile: saved.memoryFile };
  } finally {
    machine.stop("saved");
    await machine.close();
  }
}

/** Checks that the restored guest counts on from `lastTick` without a second boot. */
async function expectCountingOn(console: TextSink, lastTick: number): Promise<void> {
  await console.waitForTick(lastTick + 20, 60_000);
  const ticks = console.ticks();
  assert.ok(ticks[0] > lastTick, `the count goes on from ${lastTick}: ${ticks.join(", ")}`);
  assert.deepEqual(ticks, [...ticks].sort((x, y) => x - y), "ticks only go up");
  assert.ok(!console.text.includes("ticks: PIT at"), `no second boot:\n${console.text}`);
}

function snapshotTest(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  kvmTest(name, fn, timeoutMs);
}

snapshotTest(
  "a machine saved to a state file and a memory file is restored from them and counts on",
  async () => {
    using kvm = Kvm.open();
    const dir = await Deno.makeTempDir({ prefix: "denovisor-save-" });
    let restored: Machine | undefined;
    try {
      const stateFile = join(dir, "ticks.state");
      const { lastTick, memoryFile } = await runAndSave(kvm, { stateFile });
      assert.equal(memoryFile, `${stateFile}.mem`);
      assert.equal((await Deno.stat(memoryFile!)).size, config().memoryBytes);

      const console = new TextSink();
      const boot = await loadBootImage(config().boot);
      restored = await restore(config(), { stateFile }, { kvm, console, boot });
      restored.start();
      await expectCountingOn(console, lastTick);
    } finally {
      restored?.stop("test over");
      await restored?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  180_000,
);

snapshotTest(
  "a machine saved with its RAM inline is restored paused and counts on once resumed",
  async () => {
    using kvm = Kvm.open();
    const dir = await Deno.makeTempDir({ prefix: "denovisor-save-" });
    let restored: Machine | undefined;
    try {
      const stateFile = join(dir, "ticks.state");
      const { lastTick } = await runAndSave(kvm, { stateFile, inline: true });
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ticks.state"]);

      const console = new TextSink();
      const boot = await loadBootImage(config().boot);
      restored = await restore(config(), { stateFile }, { kvm, console, boot });
      restored.start({ paused: true });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(console.ticks().length, 0, `nothing runs while paused:\n${console.text}`);
      restored.resume();
      await expectCountingOn(console, lastTick);
    } finally {
      restored?.stop("test over");
      await restored?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  180_000,
);
