import assert from "node:assert/strict";
import { launcherPrefix, SandboxPlanError, sandboxSupport, VMM_CAPABILITIES } from "./launcher.ts";
import { detectCgroups, DomainCgroup } from "./cgroup.ts";

/** Runs `script` in sh behind `prefix`; its pid and output. */
async function runBehind(prefix: string[], script: string) {
  const child = new Deno.Command(prefix[0] ?? "/bin/sh", {
    args: [...prefix.slice(1), ...(prefix.length > 0 ? ["/bin/sh"] : []), "-c", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = await child.output();
  return {
    pid: child.pid,
    code: output.code,
    text: new TextDecoder().decode(output.stdout),
    err: new TextDecoder().decode(output.stderr),
  };
}

const STATUS =
  'echo "pid $$"; grep -E "^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Groups):" /proc/$$/status; ' +
  'echo "ipc $(readlink /proc/$$/ns/ipc)"; cat /proc/$$/cgroup';

function field(text: string, name: string): string {
  return text.match(new RegExp(`^${name}:?[ \\t]*(.*)$`, "m"))?.[1]?.trim() ?? "";
}

Deno.test("launcherPrefix() spells the steps and refuses a bad capability name", () => {
  assert.deepEqual(launcherPrefix({ cgroupProcs: [], namespaces: false }), []);
  const prefix = launcherPrefix({ cgroupProcs: [], namespaces: true, capabilities: ["net_admin"] });
  assert.deepEqual(prefix.slice(0, 4), ["unshare", "--ipc", "--uts", "--"]);
  assert.ok(prefix.includes("--bounding-set=-all,+net_admin"));
  assert.throws(
    () => launcherPrefix({ cgroupProcs: [], namespaces: false, capabilities: ["all,+sys_admin"] }),
    SandboxPlanError,
  );
});

const support = Deno.uid() === 0 ? await sandboxSupport() : undefined;

Deno.test({
  name:
    "a program behind the launcher keeps its pid, has no_new_privs, only the kept capabilities and its own IPC namespace",
  ignore: !support?.namespaces || !support?.setpriv,
  async fn() {
    const plan = { cgroupProcs: [], namespaces: true, capabilities: VMM_CAPABILITIES };
    const result = await runBehind(launcherPrefix(plan), STATUS);
    assert.equal(result.code, 0, result.err);
    assert.equal(field(result.text, "pid"), String(result.pid), "every step execs in place");
    assert.equal(field(result.text, "NoNewPrivs"), "1");
    // net_admin 12, dac_override 1, dac_read_search 2, as far as this process has them.
    const own = Deno.readTextFileSync("/proc/self/status");
    const kept = (name: string) =>
      (BigInt(`0x${field(own, name)}`) & 0x1006n).toString(16).padStart(16, "0");
    assert.equal(field(result.text, "CapEff"), kept("CapEff"));
    assert.equal(field(result.text, "CapBnd"), kept("CapBnd"));
    assert.notEqual(field(result.text, "ipc"), await Deno.readLink("/proc/self/ns/ipc"));
  },
});

Deno.test({
  name:
    "a program behind the launcher with a user runs as that uid and gid with no capabilities or groups",
  ignore: !support?.setpriv,
  async fn() {
    const plan = {
      cgroupProcs: [],
      namespaces: false,
      capabilities: [],
      user: { uid: 65534, gid: 65534 },
    };
    const result = await runBehind(launcherPrefix(plan), STATUS);
    assert.equal(result.code, 0, result.err);
    assert.match(field(result.text, "Uid"), /^65534\s+65534\s+65534\s+65534$/);
    assert.match(field(result.text, "Gid"), /^65534\s+65534\s+65534\s+65534$/);
    assert.equal(field(result.text, "Groups"), "");
    assert.equal(field(result.text, "CapEff"), "0000000000000000");
  },
});

function cgroupOrUndefined(name: string) {
  try {
    return DomainCgroup.create(detectCgroups(), name, { memoryBytes: 512 << 20, pids: 64 });
  } catch {
    return undefined;
  }
}

const group = Deno.uid() === 0 ? cgroupOrUndefined(`launch-${Deno.pid}`) : undefined;

Deno.test({
  name:
    "a program behind the launcher is in its domain cgroup from the start, and a bad cgroup stops it",
  ignore: group === undefined,
  async fn() {
    try {
      const result = await runBehind(
        launcherPrefix({ cgroupProcs: group!.procsFiles, namespaces: false }),
        STATUS,
      );
      assert.equal(result.code, 0, result.err);
      assert.match(result.text, new RegExp(`/denovisor/launch-${Deno.pid}$`, "m"));
      const bad = await runBehind(
        launcherPrefix({ cgroupProcs: ["/nonexistent/cgroup.procs"], namespaces: false }),
        "echo ran",
      );
      assert.equal(bad.code, 125);
      assert.doesNotMatch(bad.text, /ran/);
    } finally {
      group!.remove();
    }
  },
});
