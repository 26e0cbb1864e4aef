import assert from "node:assert/strict";
import { detectCgroups, DomainCgroup } from "./cgroup.ts";
import { releaseVmmSandbox, vmmCgroupStats } from "./vmm_sandbox.ts";

function creatable(): boolean {
  try {
    DomainCgroup.create(detectCgroups(), `probe-${Deno.pid}`, { memoryBytes: 1 << 30, pids: 8 })
      .remove();
    return true;
  } catch {
    return false;
  }
}

Deno.test("vmmCgroupStats() is empty for a domain without a cgroup", () => {
  assert.deepEqual(vmmCgroupStats(`none-${Deno.pid}`), {});
});

Deno.test({
  name: "vmmCgroupStats() reports a domain cgroup's figures, and releaseVmmSandbox() removes it",
  ignore: Deno.uid() !== 0 || !creatable(),
  async fn() {
    const name = `stats-${Deno.pid}`;
    const group = DomainCgroup.create(detectCgroups(), name, { memoryBytes: 300 << 20, pids: 16 });
    const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      group.add(child.pid);
      const { cgroup } = vmmCgroupStats(name);
      assert.ok(cgroup);
      assert.equal(cgroup.memoryLimitBytes, 300 << 20);
      assert.equal(cgroup.pids, 1);
      assert.equal(cgroup.oomKills, 0);
      assert.ok(cgroup.memoryBytes >= 0);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    releaseVmmSandbox(name);
    assert.equal(DomainCgroup.existing(detectCgroups(), name), undefined);
  },
});
