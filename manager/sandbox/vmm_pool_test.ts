import assert from "node:assert/strict";
import { join } from "node:path";
import { processStartTime } from "../daemon/vmm_process.ts";
import { sweepSlots } from "./vmm_pool.ts";

function slotOf(dir: string, name: string, record?: { pid: number; startTime?: number }) {
  const slot = join(dir, name);
  Deno.mkdirSync(join(slot, "root"), { recursive: true });
  if (record) Deno.writeTextFileSync(join(slot, "pooled.json"), JSON.stringify(record));
  return slot;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("sweepSlots() kills a previous daemon's waiting VMMs and keeps only taken ones", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "denovisor-pool-sweep-" });
  const waiting = new Deno.Command("sleep", { args: ["60"] }).spawn();
  const taken = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    const waitingSlot = slotOf(dir, "a-0", {
      pid: waiting.pid,
      startTime: processStartTime(waiting.pid),
    });
    const takenSlot = slotOf(dir, "a-1", {
      pid: taken.pid,
      startTime: processStartTime(taken.pid),
    });
    Deno.writeTextFileSync(join(takenSlot, "taken"), "");
    // A reused pid (another start time) and a slot with no record: nothing of ours runs.
    const reused = slotOf(dir, "a-2", { pid: taken.pid, startTime: -5 });
    const unrecorded = slotOf(dir, "a-3");
    sweepSlots(dir);
    assert.equal((await waiting.status).signal, "SIGKILL");
    assert.equal(exists(waitingSlot), false);
    assert.equal(exists(takenSlot), true);
    assert.equal(processStartTime(taken.pid) !== undefined, true, "a taken VMM was killed");
    assert.equal(exists(reused), false);
    assert.equal(exists(unrecorded), false);
  } finally {
    for (const child of [waiting, taken]) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
    }
    Deno.removeSync(dir, { recursive: true });
  }
});
