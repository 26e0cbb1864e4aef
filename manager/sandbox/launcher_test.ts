import assert from "node:assert/strict";
import {
  grantCommand,
  LAUNCHER_FAILED,
  launcherPrefix,
  pooledLauncherPrefix,
  type SandboxPlan,
  SandboxPlanError,
  sandboxSupport,
} from "./launcher.ts";
import { detectCgroups, DomainCgroup } from "./cgroup.ts";
import { sharedLibraries } from "./jail.ts";

const SH = "/bin/sh";

/** Runs `script` in /bin/sh behind `prefix`; the launcher's pid and the output. */
async function runBehind(prefix: string[], script: string) {
  const child = new Deno.Command(prefix[0], {
    args: [...prefix.slice(1), SH, "-c", script],
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

function field(text: string, name: string): string {
  return text.match(new RegExp(`^${name}:?[ \\t]*(.*)$`, "m"))?.[1]?.trim() ?? "";
}

/** A plan whose jail holds /bin/sh and its libraries, and `extra` paths. */
async function plan(root: string, extra: Partial<SandboxPlan> = {}): Promise<SandboxPlan> {
  const sh = Deno.realPathSync(SH);
  return {
    cgroupProcs: [],
    descriptors: [],
    jail: { root, readOnly: [SH, sh, ...await sharedLibraries(sh)], readWrite: [] },
    user: { uid: 65534, gid: 65534 },
    ...extra,
  };
}

Deno.test("launcherPrefix() refuses root as the VMM's user and paths that are not absolute", async () => {
  await assert.rejects(
    async () => launcherPrefix(await plan("/tmp/j", { user: { uid: 0, gid: 0 } })),
    SandboxPlanError,
  );
  await assert.rejects(async () => launcherPrefix(await plan("relative")), SandboxPlanError);
  const prefix = launcherPrefix(await plan("/tmp/j"));
  assert.ok(prefix.includes("--no-new-privs"));
  assert.deepEqual(prefix.slice(-6), [
    "unshare",
    "--root=/tmp/j",
    "--wd=/",
    "--setgid=65534",
    "--setuid=65534",
    "--",
  ]);
});

const support = Deno.uid() === 0 ? await sandboxSupport() : undefined;
const usable = support !== undefined && Object.values(support).every((ok) => ok);

/** Shell builtins only: the jail holds nothing but the shell. */
const CAT = (file: string) => `while IFS= read -r l; do echo "$l"; done <${file}`;
const STATUS = `${CAT("/proc/self/status")}; echo "root" /*; echo "procs" /proc/[0-9]*; ` +
  `while IFS=: read -r name rest; do echo "iface $name"; done </proc/net/dev; ` +
  `read line <&3 && echo "fd3 $line"; ${CAT("/proc/self/cgroup")}`;

Deno.test({
  name:
    "a program behind the launcher runs as its user with no capabilities, in its jail and namespaces, with its descriptors",
  ignore: !usable,
  async fn() {
    const root = Deno.makeTempDirSync({ prefix: "jail-test-" });
    const secret = Deno.makeTempFileSync();
    Deno.writeTextFileSync(secret, "handed over\n");
    Deno.chmodSync(secret, 0o600); // root's alone: only the descriptor reaches it
    try {
      const result = await runBehind(
        launcherPrefix(await plan(root, { descriptors: [{ fd: 3, path: secret, write: false }] })),
        STATUS,
      );
      assert.equal(result.code, 0, result.err);
      assert.match(field(result.text, "Uid"), /^65534\s+65534\s+65534\s+65534$/);
      assert.match(field(result.text, "Gid"), /^65534\s+65534\s+65534\s+65534$/);
      assert.equal(field(result.text, "Groups"), "");
      for (const set of ["CapInh", "CapPrm", "CapEff", "CapAmb"]) {
        assert.equal(field(result.text, set), "0000000000000000", set);
      }
      assert.equal(field(result.text, "NoNewPrivs"), "1");
      assert.equal(field(result.text, "NSpid"), "1");
      assert.equal(field(result.text, "procs"), "/proc/1");
      // /proc/net/dev: two heading lines, then the interfaces: only the loopback.
      const interfaces = [...result.text.matchAll(/^iface (.*)$/gm)].map((m) => m[1].trim());
      assert.deepEqual(interfaces.slice(2), ["lo"]);
      assert.equal(field(result.text, "fd3"), "handed over");
      const top = field(result.text, "root").split(" ");
      assert.ok(!top.includes("/etc") && !top.includes("/home"), top.join(" "));
      assert.ok(top.includes("/proc"));
      // The jail's mounts were in its own namespace: the directory is empty here.
      assert.deepEqual([...Deno.readDirSync(root)], []);
    } finally {
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(secret);
    }
  },
});

Deno.test({
  name: "a launcher that cannot open a handed file stops with its status and says which",
  ignore: !usable,
  async fn() {
    const root = Deno.makeTempDirSync({ prefix: "jail-test-" });
    try {
      const result = await runBehind(
        launcherPrefix(
          await plan(root, { descriptors: [{ fd: 3, path: "/nonexistent", write: true }] }),
        ),
        "echo ran",
      );
      assert.equal(result.code, LAUNCHER_FAILED);
      assert.doesNotMatch(result.text, /ran/);
      assert.match(result.err, /cannot open \/nonexistent/);
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  },
});

function cgroupOrUndefined(name: string) {
  try {
    return DomainCgroup.create(detectCgroups(), name, { memoryBytes: 512 << 20, pids: 64 });
  } catch {
    return undefined;
  }
}

const group = usable ? cgroupOrUndefined(`launch-${Deno.pid}`) : undefined;

Deno.test({
  name:
    "a program behind the launcher is in its domain cgroup from the start, and a bad cgroup stops it",
  ignore: group === undefined,
  async fn() {
    const root = Deno.makeTempDirSync({ prefix: "jail-test-" });
    try {
      const result = await runBehind(
        launcherPrefix(await plan(root, { cgroupProcs: group!.procsFiles })),
        CAT("/proc/self/cgroup"),
      );
      assert.equal(result.code, 0, result.err);
      assert.match(result.text, new RegExp(`/denovisor/launch-${Deno.pid}$`, "m"));
      const bad = await runBehind(
        launcherPrefix(await plan(root, { cgroupProcs: ["/nonexistent/cgroup.procs"] })),
        "echo ran",
      );
      assert.equal(bad.code, LAUNCHER_FAILED);
      assert.doesNotMatch(bad.text, /ran/);
    } finally {
      group!.remove();
      Deno.removeSync(root, { recursive: true });
    }
  },
});

/** The mount options of `path` as the jailed program sees them (its /proc/self/mountinfo). */
function optionsOf(mountinfo: string, path: string): string[] {
  const line = mountinfo.split("\n").findLast((l) => l.split(" ")[4] === path);
  return line?.split(" ")[5]?.split(",") ?? [];
}

Deno.test({
  name:
    "the jail's binds are read-only, read-write and stat-only as planned, and a pooled jail gets its grants later",
  ignore: !usable,
  async fn() {
    const root = Deno.makeTempDirSync({ prefix: "jail-test-" });
    const dir = Deno.makeTempDirSync({ prefix: "jail-binds-" });
    Deno.chmodSync(dir, 0o755);
    const [ro, rw, stat] = ["ro", "rw", "stat"].map((name) => {
      Deno.mkdirSync(`${dir}/${name}`, { mode: 0o777 });
      Deno.chmodSync(`${dir}/${name}`, 0o777);
      return `${dir}/${name}`;
    });
    const base = await plan(root);
    const jail = { ...base.jail, readOnly: [...base.jail.readOnly, ro], readWrite: [rw] };
    const script = `${CAT("/proc/self/mountinfo")}; : >${rw}/w && echo rw-ok; ` +
      // `true`, not `:`: a failed redirection of a special builtin ends the shell.
      `true >${ro}/w || echo ro-refused`;
    try {
      const launched = await runBehind(
        launcherPrefix({ ...base, jail: { ...jail, statOnly: [stat] } }),
        script,
      );
      assert.equal(launched.code, 0, launched.err);
      assert.ok(optionsOf(launched.text, ro).includes("ro"), launched.text);
      assert.ok(optionsOf(launched.text, ro).includes("nosuid"));
      assert.ok(optionsOf(launched.text, rw).includes("rw"));
      for (const flag of ["ro", "nosuid", "nodev", "noexec"]) {
        assert.ok(optionsOf(launched.text, stat).includes(flag), `${stat}: ${flag}`);
      }
      assert.match(launched.text, /^rw-ok$/m);
      assert.match(launched.text, /^ro-refused$/m);

      // A pooled jail: the program waits (a fifo read) until the grant is bound in.
      const fifo = `${dir}/go`;
      await new Deno.Command("mkfifo", { args: ["-m", "0666", fifo] }).output();
      const pooledRoot = Deno.makeTempDirSync({ prefix: "jail-test-" });
      // Stands for the pool's cgroup.procs: step 1 writes its pid there before the jail.
      const procs = `${dir}/pool-procs`;
      Deno.writeTextFileSync(procs, "");
      const pooled = new Deno.Command("/bin/bash", {
        args: [
          "-c",
          'exec "$@"',
          "pooled",
          ...pooledLauncherPrefix(
            {
              ...base.jail,
              root: pooledRoot,
              readOnly: [...base.jail.readOnly, dir],
            },
            base.user,
            [procs],
          ),
          SH,
          "-c",
          `read x <${fifo}; ${CAT("/proc/self/mountinfo")}; : >${rw}/p && echo granted`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // The jailed shell is the reaper's child; give it its grant in its mount namespace.
      let vmm = 0;
      for (let i = 0; i < 200 && vmm === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        const children = Deno.readTextFileSync(`/proc/${pooled.pid}/task/${pooled.pid}/children`);
        vmm = Number(children.trim().split(" ")[0]) || 0;
      }
      // Wait for the jail's steps to reach the shell (its root is the jail then).
      for (let i = 0; i < 200 && Deno.readLinkSync(`/proc/${vmm}/root`) === "/"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const grant = grantCommand(vmm, pooledRoot, { readOnly: [], readWrite: [rw] });
      const granted = await new Deno.Command(grant[0], { args: grant.slice(1) }).output();
      assert.equal(granted.code, 0, new TextDecoder().decode(granted.stderr));
      Deno.writeTextFileSync(fifo, "go\n");
      const output = await pooled.output();
      const text = new TextDecoder().decode(output.stdout);
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.match(text, /^granted$/m);
      assert.equal(Deno.readTextFileSync(procs).trim(), String(pooled.pid));
      Deno.removeSync(pooledRoot, { recursive: true });
    } finally {
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
