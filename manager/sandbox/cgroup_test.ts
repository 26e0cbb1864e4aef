import assert from "node:assert/strict";
import {
  CgroupError,
  type CgroupHost,
  detectCgroups,
  DomainCgroup,
  parseCgroupMounts,
  parseOwnCgroups,
} from "./cgroup.ts";

const HYBRID = [
  "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "33 30 0:30 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory",
  "34 30 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "40 30 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");
const OWN = "8:pids:/\n4:memory:/job/7\n1:cpu,cpuacct:/\n0::/\n";

Deno.test("detectCgroups() takes v1 on a hybrid host whose v2 has no controllers", () => {
  assert.deepEqual(parseOwnCgroups(OWN).get("memory"), "/job/7");
  assert.equal(parseCgroupMounts(HYBRID).v2, "/sys/fs/cgroup/unified");
  const host = detectCgroups(HYBRID, OWN, () => "");
  assert.deepEqual(host, {
    version: 1,
    memory: "/sys/fs/cgroup/memory/job/7",
    pids: "/sys/fs/cgroup/pids",
    cpu: "/sys/fs/cgroup/cpu",
  });
});

Deno.test("detectCgroups() takes v2 rooted at the own cgroup when it has memory, pids and cpu", () => {
  const mounts = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
  const host = detectCgroups(
    mounts,
    "0::/system.slice/denovisor.service\n",
    () => "cpu memory pids io",
  );
  assert.deepEqual(host, { version: 2, root: "/sys/fs/cgroup/system.slice/denovisor.service" });
  assert.throws(() => detectCgroups(mounts, "0::/\n", () => "cpu"), CgroupError);
});

Deno.test("DomainCgroup.create() refuses a name that would be a path", () => {
  const host: CgroupHost = { version: 2, root: "/nonexistent" };
  assert.throws(
    () => DomainCgroup.create(host, "../x", { memoryBytes: 1, pids: 1 }),
    /cannot name/,
  );
});

function usableHost(): CgroupHost | undefined {
  try {
    const host = detectCgroups();
    const probe = DomainCgroup.create(host, `probe-${Deno.pid}`, {
      memoryBytes: 1 << 30,
      pids: 64,
    });
    probe.remove();
    return host;
  } catch {
    return undefined;
  }
}

const host = Deno.uid() === 0 ? usableHost() : undefined;

Deno.test({
  name:
    "a process added to a domain cgroup is in it, under its limits, and the group goes when it ends",
  ignore: host === undefined,
  async fn() {
    const name = `test-${Deno.pid}`;
    const group = DomainCgroup.create(host!, name, {
      memoryBytes: 256 << 20,
      pids: 32,
      cpuWeight: 50,
      cpuMaxPercent: 50,
    });
    const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      group.add(child.pid);
      assert.deepEqual(group.pids(), [child.pid]);
      const membership = await Deno.readTextFile(`/proc/${child.pid}/cgroup`);
      assert.match(membership, new RegExp(`/denovisor/${name}$`, "m"));
      const stats = group.stats();
      assert.equal(stats.memoryLimitBytes, 256 << 20);
      assert.equal(stats.pids, 1);
      assert.equal(stats.oomKills, 0);
      assert.equal(group.remove(), false, "a group with a process cannot go");
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.equal(group.remove(), true);
  },
});

Deno.test({
  name: "a process that exceeds its domain cgroup's memory is killed by the kernel, and counted",
  ignore: host === undefined,
  async fn() {
    const group = DomainCgroup.create(host!, `oom-${Deno.pid}`, {
      memoryBytes: 96 << 20,
      pids: 64,
    });
    // The shell enters the group, then execs the allocating program: counted from its start.
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'echo $$ > "$0" && exec "$@"',
        group.procsFiles[0],
        Deno.execPath(),
        "eval",
        "const a = []; for (;;) a.push(new Uint8Array(1 << 20).fill(1));",
      ],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const status = await child.status;
    try {
      assert.equal(status.signal, "SIGKILL");
      assert.ok(group.stats().oomKills >= 1);
    } finally {
      group.remove();
    }
  },
});

Deno.test({
  name: "DomainCgroup.sweep() removes empty groups older than the age given, never a populated one",
  ignore: host === undefined,
  async fn() {
    const empty = DomainCgroup.create(host!, `sweep-empty-${Deno.pid}`, {
      memoryBytes: 1 << 30,
      pids: 8,
    });
    const busy = DomainCgroup.create(host!, `sweep-busy-${Deno.pid}`, {
      memoryBytes: 1 << 30,
      pids: 8,
    });
    const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      busy.add(child.pid);
      // Young groups stay.
      const prefix = "sweep-"; // only this test's groups
      DomainCgroup.sweep(host!, 60_000, { prefix });
      assert.ok(DomainCgroup.existing(host!, `sweep-empty-${Deno.pid}`));
      // Old enough (a clock an hour ahead): the empty one goes, the busy one cannot.
      DomainCgroup.sweep(host!, 60_000, { now: Date.now() + 3_600_000, prefix });
      assert.equal(DomainCgroup.existing(host!, `sweep-empty-${Deno.pid}`), undefined);
      assert.ok(DomainCgroup.existing(host!, `sweep-busy-${Deno.pid}`));
      assert.deepEqual(busy.pids(), [child.pid]);
    } finally {
      child.kill("SIGKILL");
      await child.status;
      empty.remove();
      busy.remove();
    }
  },
});
