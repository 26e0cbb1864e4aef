/**
 * The daemon's sandbox around a VMM, with a stand-in VMM (tests/fixtures/sandbox_vmm.ts)
 * so it runs without KVM: the VMM is spawned behind the launcher (its domain's cgroup,
 * namespaces, a jail, an unprivileged user without capabilities, no_new_privs) with
 * --seccomp strict and its descriptors, the cgroup goes with the VMM, "sandbox": false
 * runs it bare, a VMM killed by seccomp is reported with the call it made, and one that
 * outgrows its memory cgroup is reported killed by the kernel for it. (The daemon refuses
 * to start a sandboxed domain on a host without these features: .ci runs as root here.)
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { vmmUser } from "../manager/sandbox/vmm_user.ts";
import { readKernelLog } from "../manager/sandbox/seccomp_report.ts";
import { vmmCgroupName } from "../manager/sandbox/vmm_sandbox.ts";
import { dirname } from "node:path";
import { detectCgroups, DomainCgroup } from "../manager/sandbox/cgroup.ts";

const STAND_IN = new URL("./fixtures/sandbox_vmm.ts", import.meta.url).pathname;

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
      "strict",
    ]);
    assert.ok(argv.includes("--descriptors"));
    assert.equal(statusField(pid, "NoNewPrivs"), "1");
    assert.equal(statusField(pid, "CapEff"), "0000000000000000");
    assert.equal(statusField(pid, "Uid").split("\t")[0], String(vmmUser().uid));
    assert.equal(statusField(pid, "NSpid"), `${pid}\t1`);
    for (const ns of ["ipc", "mnt", "net", "pid"]) {
      assert.notEqual(
        Deno.readLinkSync(`/proc/${pid}/ns/${ns}`),
        Deno.readLinkSync(`/proc/self/ns/${ns}`),
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
    await daemon.waitForLog("web", "denovisor daemon: sandbox: seccomp strict");
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
    // The call's name comes from the kernel log, where this process can read it.
    const named = readKernelLog().length > 0
      ? /system call ptrace \(101\)/
      : /ptrace \(101\)|SIGSYS/;
    assert.match(crashed.lastEnd ?? "", named);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test({
  name: "a VMM that outgrows its memory cgroup is reported crashed by the kernel's OOM kill",
  ignore: !cgroups,
  async fn() {
    const daemon = await start();
    try {
      await daemon.run({ name: "oom", boot: { demo: true }, memory: 32, onCrash: "preserve" });
      const crashed = await daemon.waitFor("oom", (info) => info.state === "crashed", 60_000);
      const log = await daemon.waitForLog("oom", "denovisor daemon:");
      assert.match(
        crashed.lastEnd ?? "",
        /VMM killed by the kernel: out of memory in its cgroup \(608 MiB/,
        log,
      );
    } finally {
      await daemon.cleanup();
    }
  },
});

Deno.test("a host without the sandbox's tools refuses sandboxed domains, naming what is missing and the opt-out", async () => {
  // No util-linux on the daemon's PATH: no unshare, no setpriv.
  const daemon = await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", STAND_IN]),
    PATH: "/nonexistent",
  });
  try {
    await assert.rejects(
      () => daemon.run({ name: "refused", boot: { demo: true } }),
      (error: Error) => {
        assert.match(
          error.message,
          /Cannot start domain 'refused' sandboxed: this host lacks mount, PID, network, IPC and UTS namespaces \(unshare from util-linux\)/,
        );
        assert.match(error.message, /"sandbox": false/);
        return true;
      },
    );
    const bare = await daemon.run({ name: "bare", boot: { demo: true }, sandbox: false });
    assert.ok(bare.pid);
  } finally {
    await daemon.cleanup();
  }
});
