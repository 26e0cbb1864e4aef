import assert from "node:assert/strict";
import { detectCgroups, DomainCgroup } from "./cgroup.ts";
import { releaseVmmSandbox, vmmCgroupName, vmmCgroupStats } from "./vmm_sandbox.ts";

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
  assert.deepEqual(vmmCgroupStats(`/run/denovisor/domains/none-${Deno.pid}`), {});
});

Deno.test({
  name: "vmmCgroupStats() reports a domain cgroup's figures, and releaseVmmSandbox() removes it",
  ignore: Deno.uid() !== 0 || !creatable(),
  async fn() {
    const runDir = `/run/denovisor-test-${Deno.pid}/domains/stats`;
    const name = vmmCgroupName(runDir);
    const group = DomainCgroup.create(detectCgroups(), name, { memoryBytes: 300 << 20, pids: 16 });
    const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      group.add(child.pid);
      const { cgroup } = vmmCgroupStats(runDir);
      assert.ok(cgroup);
      assert.equal(cgroup.memoryLimitBytes, 300 << 20);
      assert.equal(cgroup.pids, 1);
      assert.equal(cgroup.oomKills, 0);
      assert.ok(cgroup.memoryBytes >= 0);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    releaseVmmSandbox(runDir);
    assert.equal(DomainCgroup.existing(detectCgroups(), name), undefined);
  },
});

Deno.test("vmmCgroupName() names the domain and tells two daemons' run directories apart", () => {
  const a = vmmCgroupName("/run/denovisor/domains/web");
  assert.match(a, /^web\.[0-9a-f]{8}$/);
  assert.equal(vmmCgroupName("/run/denovisor/domains/web/"), a);
  assert.notEqual(vmmCgroupName("/tmp/other-daemon/domains/web"), a);
});
