/**
 * The daemon's sandbox around a VMM, with a stand-in VMM (tests/fixtures/sandbox_vmm.ts)
 * so it runs without KVM: the VMM is spawned behind the launcher (no_new_privs, reduced
 * capabilities, its own IPC namespace, its domain's cgroup) with --seccomp, the cgroup
 * goes with the VMM, "sandbox": false runs it bare, and a VMM killed by seccomp is
 * reported with the call it made. Each host feature is checked only where the host has it
 * (the daemon degrades with a line in the log where it does not).
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { sandboxSupport } from "../manager/sandbox/launcher.ts";
import { vmmCgroupName } from "../manager/sandbox/vmm_sandbox.ts";
import { dirname } from "node:path";
import { detectCgroups, DomainCgroup } from "../manager/sandbox/cgroup.ts";

const STAND_IN = new URL("./fixtures/sandbox_vmm.ts", import.meta.url).pathname;
const support = await sandboxSupport();

function cgroupsUsable(): boolean {
  try {
    DomainCgroup.create(detectCgroups(), `probe-${Deno.pid}`, { memoryBytes: 1 << 30, pids: 64 })
      .remove();
    return true;
  } catch {
    return false;
  }
}
const cgroups = cgroupsUsable();

async function start(): Promise<TestDaemon> {
  return await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", STAND_IN]),
  });
}

function statusField(pid: number, name: string): string {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  return text.match(new RegExp(`^${name}:[ \\t]*(.*)$`, "m"))?.[1]?.trim() ?? "";
}

Deno.test("a domain's VMM runs behind the sandbox and its cgroup goes with it", async () => {
  const daemon = await start();
  try {
    const info = await daemon.run({ name: "web", boot: { demo: true } });
    const pid = info.pid!;
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    assert.deepEqual(argv.slice(argv.indexOf("--seccomp"), argv.indexOf("--seccomp") + 2), [
      "--seccomp",
      "log",
    ]);
    if (support.setpriv) {
      assert.equal(statusField(pid, "NoNewPrivs"), "1");
      // What this process's capabilities (the daemon's) keep of net_admin, dac_override
      // and dac_read_search.
      const own = BigInt(`0x${statusField(Deno.pid, "CapEff")}`);
      assert.equal(BigInt(`0x${statusField(pid, "CapEff")}`), own & 0x1006n);
    }
    if (support.namespaces) {
      assert.notEqual(
        Deno.readLinkSync(`/proc/${pid}/ns/ipc`),
        Deno.readLinkSync("/proc/self/ns/ipc"),
      );
    }
    let cgroupDir: string | undefined;
    if (cgroups) {
      const group = vmmCgroupName(dirname(info.consoleSocket!));
      assert.match(group, /^web\.[0-9a-f]{8}$/);
      assert.match(
        Deno.readTextFileSync(`/proc/${pid}/cgroup`),
        new RegExp(`/denovisor/${group}$`, "m"),
      );
      cgroupDir = DomainCgroup.existing(detectCgroups(), group)?.path;
      assert.ok(cgroupDir);
    }
    await daemon.waitForLog("web", "denovisor daemon: sandbox: seccomp log");
    await daemon.client.post("/v1/domains/web/destroy");
    if (cgroupDir) {
      const gone = () => Deno.lstat(cgroupDir!).then(() => false, () => true);
      const deadline = Date.now() + 10_000;
      while (!(await gone()) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.throws(() => Deno.statSync(cgroupDir!), Deno.errors.NotFound);
    }
  } finally {
    await daemon.cleanup();
  }
});

Deno.test('"sandbox": false runs the VMM bare, with a warning in its log', async () => {
  const daemon = await start();
  try {
    const info = await daemon.run({ name: "bare", boot: { demo: true }, sandbox: false });
    const argv = Deno.readTextFileSync(`/proc/${info.pid}/cmdline`).split("\0");
    assert.equal(argv[argv.indexOf("--seccomp") + 1], "off");
    // As bare as the daemon: no_new_privs only where this process has it already.
    assert.equal(statusField(info.pid!, "NoNewPrivs"), statusField(Deno.pid, "NoNewPrivs"));
    assert.equal(statusField(info.pid!, "CapEff"), statusField(Deno.pid, "CapEff"));
    await daemon.waitForLog("bare", "sandbox off");
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("a VMM killed by seccomp is reported as crashed with the call it made", async () => {
  const daemon = await start();
  try {
    await daemon.run({ name: "sigsys", boot: { demo: true }, onCrash: "preserve" });
    const crashed = await daemon.waitFor("sigsys", (info) => info.state === "crashed");
    assert.match(crashed.lastEnd ?? "", /VMM killed by seccomp/);
    assert.match(crashed.lastEnd ?? "", /ptrace \(101\)|SIGSYS/);
  } finally {
    await daemon.cleanup();
  }
});
