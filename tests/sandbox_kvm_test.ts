/**
 * A real domain's VMM under the daemon's default sandbox: its seccomp filter is installed
 * (one more filter than the daemon has), no_new_privs is set, and where the host provides
 * them its capabilities are reduced and it sits in its domain's cgroup with the memory
 * limit the daemon computed; the same explicitly under `strict` (the default), and
 * `denovisor run --seccomp=strict`. A domain under `log` shows the calls the VMM made
 * outside the allow-list (the kernel logs them: `dmesg | grep type=1326`, `sig=0`); the
 * test fails on any, so a new call is found here before it kills a domain.
 */

import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { denovisor, guest } from "./cli_support.ts";
import { domainGuest, TestDaemon } from "./daemon_support.ts";
import { vmmUser } from "../manager/sandbox/vmm_user.ts";
import { detectCgroups, DomainCgroup } from "../manager/sandbox/cgroup.ts";
import { readKernelLog } from "../manager/sandbox/seccomp_report.ts";
import { syscallName } from "../vmm/sandbox/syscall_numbers.ts";
import { vmmCgroupLimits, vmmCgroupName } from "../manager/sandbox/vmm_sandbox.ts";
import { dirname } from "node:path";

function statusField(pid: number | "self", name: string): string | undefined {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  return text.match(new RegExp(`^${name}:[ \\t]*(.*)$`, "m"))?.[1]?.trim();
}

/** The calls the kernel logged (not killed) for `pid`: what the allow-list lacks. */
function loggedCalls(pid: number): string[] {
  const calls = new Set<string>();
  for (const line of readKernelLog()) {
    if (!line.includes("type=1326") || !line.includes(` pid=${pid} `)) continue;
    const nr = line.match(/ syscall=(\d+) /);
    if (nr) calls.add(`${syscallName(Number(nr[1]))} (${nr[1]})`);
  }
  return [...calls];
}

/** Checks the sandbox of the running VMM `pid` whose run directory holds `consoleSocket`. */
async function assertSandboxed(pid: number, consoleSocket: string, memoryMiB = 32): Promise<void> {
  const runDir = dirname(consoleSocket);
  assert.equal(statusField(pid, "Seccomp"), "2");
  const own = statusField("self", "Seccomp_filters");
  if (own !== undefined) {
    assert.equal(Number(statusField(pid, "Seccomp_filters")), Number(own) + 1);
  }
  assert.equal(statusField(pid, "NoNewPrivs"), "1");
  const user = vmmUser();
  assert.notEqual(user.uid, 0);
  assert.equal(statusField(pid, "Uid"), Array(4).fill(user.uid).join("\t"));
  assert.equal(statusField(pid, "Gid"), Array(4).fill(user.gid).join("\t"));
  assert.equal(statusField(pid, "Groups"), "");
  for (const set of ["CapInh", "CapPrm", "CapEff", "CapAmb"]) {
    assert.equal(statusField(pid, set), "0000000000000000", set);
  }
  // Its own namespaces; pid 1 in its PID namespace.
  for (const ns of ["mnt", "pid", "net", "ipc", "uts"]) {
    assert.notEqual(
      await Deno.readLink(`/proc/${pid}/ns/${ns}`),
      await Deno.readLink(`/proc/self/ns/${ns}`),
      ns,
    );
  }
  assert.equal(statusField(pid, "NSpid"), `${pid}\t1`);
  // No network but a loopback (and the tap descriptors it was handed).
  const interfaces = Deno.readTextFileSync(`/proc/${pid}/net/dev`).split("\n").slice(2)
    .map((line) => line.split(":")[0].trim()).filter((name) => name !== "");
  assert.deepEqual(interfaces, ["lo"]);
  // Its root is its jail: none of the host's /etc, /home or /var; its run directory is there.
  const root = `/proc/${pid}/root`;
  const top = [...Deno.readDirSync(root)].map((entry) => entry.name).sort();
  for (const hostOnly of ["etc", "home", "var", "boot", "sys", "srv"]) {
    assert.ok(!top.includes(hostOnly), `/${hostOnly} is not in the jail (${top.join(", ")})`);
  }
  assert.throws(() => Deno.statSync(`${root}/etc/passwd`), Deno.errors.NotFound);
  assert.ok(Deno.statSync(`${root}${consoleSocket}`).isSocket);
  assert.deepEqual(
    [...Deno.readDirSync(`${root}/proc`)].filter((e) => /^\d+$/.test(e.name)).map((e) => e.name),
    ["1"],
    "its /proc shows its own PID namespace only",
  );
  const group = DomainCgroup.existing(detectCgroups(), vmmCgroupName(runDir));
  assert.ok(group !== undefined, "the domain's cgroup exists");
  assert.ok(group.pids().includes(pid), `VMM ${pid} is in ${group.path}`);
  const limits = vmmCgroupLimits({ memoryBytes: memoryMiB * 1024 * 1024, vcpus: 1 });
  assert.equal(group.stats().memoryLimitBytes, limits.memoryBytes);
}

kvmTest(
  "a domain's VMM runs under its seccomp filter, without privileges, in its cgroup",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const info = await daemon.run(domainGuest("web"));
      await daemon.waitForLog("web", "tick 2");
      await assertSandboxed(info.pid!, info.consoleSocket!);
      const off = await daemon.client.post<{ state: string }>("/v1/domains/web/shutdown", {
        timeoutSeconds: 20,
      });
      assert.equal(off.state, "shutoff");
      const logged = await daemon.run(domainGuest("logged", { sandbox: { seccomp: "log" } }));
      await daemon.waitForLog("logged", "tick 2");
      await daemon.client.post("/v1/domains/logged/shutdown", { timeoutSeconds: 20 });
      assert.deepEqual(loggedCalls(logged.pid!), [], "calls outside the allow-list (add them)");
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

function strictTest(name: string, fn: () => Promise<void>): void {
  kvmTest(name, fn, 120_000);
}

strictTest(
  "a domain under the strict filter ticks, shuts down cleanly and logs no killed call",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const info = await daemon.run(domainGuest("strict", { sandbox: { seccomp: "strict" } }));
      await daemon.waitForLog("strict", "tick 3");
      await assertSandboxed(info.pid!, info.consoleSocket!);
      const off = await daemon.client.post<{ state: string; lastEnd?: string }>(
        "/v1/domains/strict/shutdown",
        { timeoutSeconds: 20 },
      );
      assert.equal(off.state, "shutoff", off.lastEnd);
      assert.doesNotMatch(off.lastEnd ?? "", /seccomp/);
    } finally {
      await daemon.cleanup();
    }
  },
);

strictTest("denovisor run --seccomp=strict boots the 2-vCPU demo guest to its end", async () => {
  const r = await denovisor(["run", "--seccomp=strict", "--cpus", "2", "--memory", "128M"], {
    env: { DENO_NO_UPDATE_CHECK: "1" },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /timer: 20\/20 ticks/);
  assert.match(r.stdout, /demo: done, exiting/);
});

kvmTest(
  "denovisor run --no-sandbox runs unfiltered and says so; with --seccomp it is refused",
  async () => {
    const r = await denovisor(["run", "--no-sandbox", "--kernel", guest("hello")], {
      env: { DENO_NO_UPDATE_CHECK: "1" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: --no-sandbox/);
    assert.match(r.stderr, /seccomp filter off/);
    assert.match(r.stdout, /hello from guest/);
    const both = await denovisor([
      "run",
      "--no-sandbox",
      "--seccomp",
      "log",
      "--kernel",
      guest("hello"),
    ]);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /--no-sandbox and --seccomp log contradict each other/);
  },
);

kvmTest(
  "a jailed domain with a qcow2 overlay, a NIC, rng, balloon and a virtio console boots, resets and gives its tap back",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const base = `${daemon.dir}/base.raw`;
      const overlay = `${daemon.dir}/overlay.qcow2`;
      Deno.writeFileSync(base, new Uint8Array(4 * 1024 * 1024));
      const made = await new Deno.Command("qemu-img", {
        args: ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay],
      }).output();
      assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
      Deno.chmodSync(base, 0o600);
      Deno.chmodSync(overlay, 0o600);
      const info = await daemon.run(domainGuest("devices", {
        memory: 64,
        disks: [{ path: overlay, format: "qcow2", transport: "mmio" }, {
          path: base,
          readOnly: true,
        }],
        nics: [{ tap: "auto", transport: "mmio" }],
        rng: true,
        balloon: true,
        console: "virtio",
      }));
      await daemon.waitForLog("devices", "tick 1");
      await assertSandboxed(info.pid!, info.consoleSocket!, 64);
      const table = JSON.parse(
        Deno.readTextFileSync(`${dirname(info.consoleSocket!)}/descriptors.json`),
      );
      const kernel = (domainGuest("x").boot as { kernel: string }).kernel;
      assert.deepEqual(Object.keys(table.files).sort(), [base, overlay, kernel].sort());
      const [tap] = Object.keys(table.taps);
      assert.match(tap, /^dv\d+$/);
      // Owned by the VMM's user, so that it could attach without CAP_NET_ADMIN.
      assert.equal(Number(Deno.readTextFileSync(`/sys/class/net/${tap}/owner`)), vmmUser().uid);
      // A reset rebuilds the machine in the jail from the handed descriptors.
      const reset = await daemon.client.post<{ state: string; pid?: number }>(
        "/v1/domains/devices/reset",
      );
      assert.deepEqual([reset.state, reset.pid], ["running", info.pid]);
      let log = "";
      for (let tries = 0; tries < 100 && log.split("domain guest up").length < 3; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        log = await daemon.waitForLog("devices", "domain guest up");
      }
      assert.equal(log.split("domain guest up").length, 3, `booted twice:\n${log}`);
      assert.doesNotMatch(log, /cannot|Cannot open/);
      await daemon.client.post("/v1/domains/devices/destroy");
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && exists(`/sys/class/net/${tap}`)) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(!exists(`/sys/class/net/${tap}`), `the daemon removed ${tap}`);
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

kvmTest(
  "the test harness gives back the taps of a killed daemon's jailed VMMs (no leaked persistent dvN)",
  async () => {
    const daemon = await TestDaemon.start();
    let tap = "";
    try {
      const info = await daemon.run(domainGuest("leak", { nics: [{ tap: "auto" }] }));
      const table = JSON.parse(
        Deno.readTextFileSync(`${dirname(info.consoleSocket!)}/descriptors.json`),
      );
      [tap] = Object.keys(table.taps);
      assert.match(tap, /^dv\d+$/);
      await daemon.kill("SIGKILL"); // the daemon never sees its VMM end
    } finally {
      await daemon.cleanup();
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && exists(`/sys/class/net/${tap}`)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(!exists(`/sys/class/net/${tap}`), `${tap} was removed`);
  },
  60_000,
);

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
