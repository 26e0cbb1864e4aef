/**
 * A 4-vCPU machine whose vCPUs 1-3 run off-thread (core/vcpu_off_thread.ts; vCPU 0 on
 * its Worker): guests/domain.c `aps=1` has every AP count on an IPI at each beat and
 * checks the pages they write, so the APs run guest code, halt in the kernel and are
 * woken again all the time. Paused and resumed over and over while they do, then saved,
 * and restored into a second machine where every AP counts on.
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
  vcpus: 4,
  memoryBytes: 32 * 1024 * 1024,
  boot: { kind: "linux", kernel: guest("domain"), cmdline: "aps=1" },
  disks: [],
  nics: [],
  balloon: false,
});

/** The AP counts of the last beat line ("tick N cpus A,B,C ram ok"), and its tick. */
function lastBeat(console: TextSink): { tick: number; counts: number[] } | undefined {
  const beats = [...console.text.matchAll(/tick (\d+) cpus ([\d,]+) ram ok/g)];
  const last = beats.at(-1);
  if (!last) return undefined;
  return { tick: Number(last[1]), counts: last[2].split(",").map(Number) };
}

async function waitForBeat(console: TextSink, after: number, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    assert.doesNotMatch(console.text, /FAIL/);
    const beat = lastBeat(console);
    if (beat && beat.tick > after) return beat;
    assert.ok(Date.now() < deadline, `no beat after ${after}:\n${console.text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

kvmTest(
  "a 4-vCPU machine with off-thread APs pauses, resumes, saves and restores while its APs work",
  async () => {
    using kvm = Kvm.open();
    const dir = await Deno.makeTempDir({ prefix: "denovisor-offthread-" });
    const stateFile = join(dir, "aps.state");
    const boot = await loadBootImage(config().boot);
    const console = new TextSink();
    const machine = build(config(), { kvm, console, boot });
    let restored: Machine | undefined;
    try {
      machine.start();
      await console.waitFor(/domain: 3 of 3 aps started/, 60_000);
      let beat = await waitForBeat(console, 2);
      for (let round = 0; round < 5; round++) {
        await machine.pause();
        assert.ok(machine.isPaused, JSON.stringify(machine.vcpuStats));
        const atPause = console.text.length;
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(console.text.length, atPause, "no output while paused");
        machine.resume();
        const next = await waitForBeat(console, beat.tick);
        assert.ok(next.counts.every((c, i) => c >= beat.counts[i]), JSON.stringify([beat, next]));
        beat = next;
      }
      assert.ok(beat.counts.every((c) => c > 0), `every AP counted: ${JSON.stringify(beat)}`);
      assert.ok(machine.vcpuStats.every((v) => v.state === "running"));
      // Only vCPU 0 (its Worker) has a thread of its own, whose CPU time is the vCPU's;
      // the APs share pool threads, so none is named as theirs.
      const [bsp, ...aps] = machine.vcpuStats;
      assert.ok(bsp.ownThread && bsp.tid > 0, JSON.stringify(bsp));
      assert.ok(aps.every((v) => !v.ownThread && v.tid === 0), JSON.stringify(aps));

      await machine.pause();
      const saved = await saveMachine(machine, config(), kvm, { stateFile });
      assert.ok(saved.stateBytes > 0);
      const before = lastBeat(console)!;
      machine.stop("saved");
      await machine.close();

      const after = new TextSink();
      restored = await restore(config(), { stateFile }, { kvm, console: after, boot });
      restored.start();
      const first = await waitForBeat(after, 0);
      assert.ok(first.tick > before.tick, `counts on from ${before.tick}: ${first.tick}`);
      const later = await waitForBeat(after, first.tick + 2);
      assert.ok(
        later.counts.every((c, i) => c > before.counts[i]),
        `every AP counts on after the restore: ${JSON.stringify([before, later])}`,
      );
      assert.doesNotMatch(after.text, /domain guest up/, "no second boot");
    } finally {
      machine.stop("test over");
      await machine.close();
      restored?.stop("test over");
      await restored?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  180_000,
);
