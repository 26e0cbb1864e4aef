/**
 * The steps that confine a VMM before Deno starts in it: a prefix of commands that each
 * change the process and exec the next (the daemon's spawn runs them as root).
 *
 * 1. `bash` (host namespaces, root) writes its pid into the domain's cgroup.procs files,
 *    so the VMM is counted from its first instruction, and opens the files the VMM is
 *    handed (./jail.ts: /dev/kvm, images, kernels, /dev/net/tun in the host's network
 *    namespace) on fixed descriptor numbers that the VMM inherits.
 * 2. `unshare --ipc --uts --mount --net --pid`, then `bash` that runs the rest as its
 *    child: the VMM is pid 1 of its PID namespace, a child of that `bash`, which waits for
 *    it and ends as it did (killed by the same signal, or with its status); the network
 *    namespace holds only a loopback that is down.
 * 3. `bash` (root, in the new mount namespace) builds the jail: a small tmpfs on the
 *    per-domain directory, with only the listed paths bound into it (read-only but for
 *    the run directory and the log) and a /proc of the new PID namespace. The mounts
 *    exist in that namespace only: nothing to clean on the host.
 * 4. `setpriv --no-new-privs`, clearing the inheritable and ambient capabilities and the
 *    bounding set but for what step 5 needs.
 * 5. `unshare --root=JAIL --setgid=G --setuid=U`: chroot into the jail, drop the
 *    supplementary groups, then become the VMM's unprivileged user, which clears every
 *    capability; then exec the VMM (its path inside the jail is the same as outside).
 *
 * A chroot is enough here: escaping one takes CAP_SYS_CHROOT (or a descriptor of a
 * directory outside, and the VMM is handed none), and the VMM has no capability at all.
 *
 * This is done with bash and util-linux rather than inside the Deno process because
 * credentials are per thread in the kernel (a raw setresuid through FFI changes one thread
 * of a runtime that already has a dozen) and unshare(CLONE_NEWPID) affects children only.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { HandedOpen } from "./jail.ts";

/** How to confine one VMM. */
export interface SandboxPlan {
  /** cgroup.procs files to enter (see ./cgroup.ts); empty for none. */
  cgroupProcs: readonly string[];
  /** Files opened for the VMM, on these descriptor numbers (from 3, in order). */
  descriptors: readonly HandedOpen[];
  /** The jail: its (existing, empty) root directory and what is bound into it. */
  jail: {
    root: string;
    readOnly: readonly string[];
    readWrite: readonly string[];
    /**
     * Files the VMM reaches through its descriptors but also stats by path (a save
     * records its images' identity): bound read-only, nodev and noexec, so a name is
     * there; their modes still keep the VMM's user from opening them.
     */
    statOnly?: readonly string[];
  };
  /** The VMM's unprivileged user and group. */
  user: { uid: number; gid: number };
}

/** Exit status of a launcher step that failed (its reason is on stderr: the domain's log). */
export const LAUNCHER_FAILED = 125;

/** The capabilities step 5 needs and nothing after it has: chroot, setgroups/setgid, setuid. */
const JAIL_ENTRY_CAPABILITIES = "-all,+sys_chroot,+setuid,+setgid";

/** A plan that cannot be expressed. */
export class SandboxPlanError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Step 1: cgroups named before "--", then one open per descriptor (paths follow). */
function openScript(descriptors: readonly HandedOpen[]): string {
  const lines = [
    'for f; do [ "$f" = -- ] && break; echo $$ >"$f" || exit 125; shift; done; shift',
  ];
  descriptors.forEach((d, i) => {
    if (d.fd !== 3 + i) throw new SandboxPlanError(`descriptor ${d.fd} is out of order`);
    const redirect = d.write ? "<>" : "<";
    lines.push(
      `{ [ -e "$1" ] && exec ${d.fd}${redirect}"$1"; } || ` +
        `{ echo "denovisor launcher: cannot open $1" >&2; exit 125; }; shift`,
    );
  });
  lines.push('exec "$@"');
  return lines.join("\n");
}

/**
 * Step 2's parent: runs the rest as its child (pid 1 of the new PID namespace), waits,
 * and ends as it did: killed by the same signal (SIGKILL and SIGSYS included, which
 * `unshare --fork` cannot re-raise for SIGKILL) or with its status.
 */
const REAPER_SCRIPT = '"$@" & wait $!; s=$?; [ $s -gt 128 ] && kill -s $((s - 128)) $$; exit $s';

/**
 * The launcher's namespaces step and its privileges step, each followed by what it execs:
 * one definition for the launch and for the host probe, so the probe tries what runs.
 */
const NAMESPACES_STEP: readonly string[] = [
  "unshare",
  "--ipc",
  "--uts",
  "--mount",
  "--net",
  "--pid",
  "--",
  "/bin/bash",
  "-c",
  REAPER_SCRIPT,
  "denovisor-reaper",
];
const PRIVILEGES_STEP: readonly string[] = [
  "setpriv",
  "--no-new-privs",
  "--inh-caps=-all",
  "--ambient-caps=-all",
  `--bounding-set=${JAIL_ENTRY_CAPABILITIES}`,
  "--",
];

/**
 * Binds `MODE PATH` pairs (ro, rw, stat) into the jail at `$J` until "--": step 3's loop,
 * and what a pooled VMM's jail is given when a domain takes it (./vmm_pool.ts). Each path
 * costs two processes (mkdir, mount): the jail's set-up time is mostly these.
 */
const BIND_LOOP = `fail() { echo "denovisor launcher: jail: $*" >&2; exit 125; }
while [ "$1" != -- ]; do
  m=$1 p=$2; shift 2
  if [ -d "$p" ]; then mkdir -p "$J$p"
  else mkdir -p "$J\${p%/*}" && { [ -e "$J$p" ] || : >"$J$p"; }
  fi || fail "cannot make $J$p"
  # One process per path: mount(8) (util-linux >= 2.27) remounts a bind with its options;
  # a read-write bind keeps the flags of the mount it comes from, as it did.
  case $m in
    ro) mount --bind -o ro,nosuid "$p" "$J$p" ;;
    stat) mount --bind -o ro,nosuid,nodev,noexec "$p" "$J$p" ;;
    *) mount --bind "$p" "$J$p" ;;
  esac || fail "cannot bind $p ($m)"
done
shift`;

/** Step 3: the jail's mounts, then exec what follows "--". */
const JAIL_SCRIPT = `J=$1; shift; umask 022
${BIND_LOOP.split("\n")[0]}
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev denovisor-jail "$J" || fail "cannot mount a tmpfs on $J"
${BIND_LOOP.split("\n").slice(1).join("\n")}
mkdir -p "$J/proc" && mount -t proc -o nosuid,nodev,noexec proc "$J/proc" || fail "cannot mount /proc"
exec "$@"`;

/** The jail's binds as `MODE PATH` pairs, parents before children; paths checked. */
function bindPairs(jail: SandboxPlan["jail"]): string[] {
  const binds = [
    ...jail.readOnly.map((path) => ["ro", path]),
    ...jail.readWrite.map((path) => ["rw", path]),
    ...(jail.statOnly ?? []).map((path) => ["stat", path]),
  ]
    // Parents before children: a path inside a bound directory is bound over it.
    .sort((a, b) => a[1].length - b[1].length);
  for (const [, path] of [...binds, ["", jail.root]]) {
    if (!path.startsWith("/") || path.includes("\n")) {
      throw new SandboxPlanError(`'${path}' is not an absolute path`);
    }
  }
  return binds.flat();
}

function checkUser({ uid, gid }: SandboxPlan["user"]): void {
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0 || gid <= 0) {
    throw new SandboxPlanError(`The VMM's user must not be root (uid ${uid}, gid ${gid})`);
  }
}

/** Steps 2 to 5 for `jail` and `user`, then exec what follows. */
function jailSteps(jail: SandboxPlan["jail"], user: SandboxPlan["user"]): string[] {
  checkUser(user);
  return [
    ...NAMESPACES_STEP,
    "/bin/bash",
    "-c",
    JAIL_SCRIPT,
    "denovisor-jail",
    jail.root,
    ...bindPairs(jail),
    "--",
    ...PRIVILEGES_STEP,
    "unshare",
    `--root=${jail.root}`,
    "--wd=/",
    `--setgid=${user.gid}`,
    `--setuid=${user.uid}`,
    "--",
  ];
}

/**
 * The argv prefix of a pooled VMM (./vmm_pool.ts): step 1 entering the pool's own cgroups
 * (`cgroupProcs`, so what it touches while loading is charged there and not to the
 * daemon's group), no descriptors, then steps 2 to 5 with a generic jail (the program and
 * its libraries only); the domain's cgroups, descriptors, run directory and log come when
 * a domain takes it (`grantCommand`).
 */
export function pooledLauncherPrefix(
  jail: SandboxPlan["jail"],
  user: SandboxPlan["user"],
  cgroupProcs: readonly string[],
): string[] {
  return [
    "/bin/bash",
    "-c",
    openScript([]),
    "denovisor-launch",
    ...cgroupProcs,
    "--",
    ...jailSteps(jail, user),
  ];
}

/**
 * The command that binds `binds` into the jail (rooted at `jailRoot`) of the running VMM
 * `pid`, in that VMM's mount namespace: what step 3 would have bound had the paths been
 * known when it ran.
 */
export function grantCommand(
  pid: number,
  jailRoot: string,
  binds: Omit<SandboxPlan["jail"], "root">,
): string[] {
  if (!Number.isInteger(pid) || pid <= 1) throw new SandboxPlanError(`No such VMM pid ${pid}`);
  return [
    "nsenter",
    `--target=${pid}`,
    "--mount",
    "--",
    "/bin/bash",
    "-c",
    `J=$1; shift; umask 022\n${BIND_LOOP}`,
    "denovisor-grant",
    jailRoot,
    ...bindPairs({ root: jailRoot, ...binds }),
    "--",
  ];
}

/** The argv prefix that applies `plan` and then execs the argv placed after it. */
export function launcherPrefix(plan: SandboxPlan): string[] {
  checkUser(plan.user);
  const steps = jailSteps(plan.jail, plan.user);
  return [
    "/bin/bash",
    "-c",
    openScript(plan.descriptors),
    "denovisor-launch",
    ...plan.cgroupProcs,
    "--",
    ...plan.descriptors.map((d) => d.path),
    ...steps,
  ];
}

/** Which confinement steps work on this host (each tried once with /bin/true). */
export interface SandboxSupport {
  /** bash, to open the handed descriptors and build the jail. */
  bash: boolean;
  /** Mount, PID, network, IPC and UTS namespaces (unshare). */
  namespaces: boolean;
  /** no_new_privs and the capability sets (setpriv). */
  setpriv: boolean;
  /** A chroot and a switch to an unprivileged user (unshare --root --setuid). */
  jail: boolean;
}

/** Why each feature matters, for messages: `sandbox: <feature> (<what>)`. */
export const SANDBOX_FEATURES: Record<keyof SandboxSupport, string> = {
  bash: "/bin/bash, which opens the VMM's descriptors and builds its jail",
  namespaces: "mount, PID, network, IPC and UTS namespaces (unshare from util-linux)",
  setpriv: "no_new_privs and dropped capabilities (setpriv from util-linux)",
  jail: "a chroot and an unprivileged user (unshare --root --setuid from util-linux)",
};

let support: Promise<SandboxSupport> | undefined;

async function works(argv: string[]): Promise<boolean> {
  try {
    const status = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return status.success;
  } catch {
    return false; // not installed
  }
}

/**
 * What this host supports, asked once per process: a container without CAP_SYS_ADMIN
 * cannot unshare, a minimal image may lack util-linux's setpriv.
 */
export function sandboxSupport(): Promise<SandboxSupport> {
  support ??= (async () => ({
    bash: await works(["/bin/bash", "-c", "exec 3</dev/null"]),
    namespaces: await works([
      ...NAMESPACES_STEP,
      "/bin/true",
    ]),
    setpriv: await works([
      ...PRIVILEGES_STEP,
      "/bin/true",
    ]),
    jail: await works(["unshare", "--root=/", "--setgid=65534", "--setuid=65534", "/bin/true"]),
  }))();
  return support;
}

/** The features of `support` this host lacks, in words. */
export function missingFeatures(support: SandboxSupport): string[] {
  return (Object.keys(SANDBOX_FEATURES) as (keyof SandboxSupport)[])
    .filter((feature) => !support[feature])
    .map((feature) => SANDBOX_FEATURES[feature]);
}
