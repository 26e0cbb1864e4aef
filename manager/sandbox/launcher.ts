/**
 * The steps that confine a VMM before Deno starts in it: a prefix of commands that each
 * change the process and exec the next, so the pid the daemon spawned stays the VMM's.
 *
 * 1. `sh` writes its pid into the domain's cgroup.procs files: the VMM is counted from
 *    its first instruction.
 * 2. `unshare --ipc --uts`: System V IPC objects and the host name of the host are out
 *    of sight.
 * 3. `setpriv`: no_new_privs, inheritable and ambient capabilities cleared, the bounding
 *    set reduced to `capabilities` (so uid 0 keeps only those after exec), and with
 *    `user` a switch to an unprivileged uid and gid with no supplementary groups.
 *
 * This is done with util-linux rather than inside the Deno process because credentials
 * are per thread in the kernel: a raw setresuid through FFI would change one thread of a
 * runtime that already has a dozen, and unshare(CLONE_NEWPID) only affects children.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** How to confine one VMM. */
export interface SandboxPlan {
  /** cgroup.procs files to enter (see ./cgroup.ts); empty for none. */
  cgroupProcs: readonly string[];
  /** New IPC and UTS namespaces. */
  namespaces: boolean;
  /**
   * Drop privileges with setpriv, keeping these capabilities (names as setpriv spells
   * them, e.g. "net_admin"); undefined leaves the process as it is.
   */
  capabilities?: readonly string[];
  /** Run as this unprivileged user (with `capabilities`: usually none). */
  user?: { uid: number; gid: number };
}

/** The capabilities a VMM running as uid 0 keeps: taps and bridges, and images it does not own. */
export const VMM_CAPABILITIES: readonly string[] = [
  "net_admin", // TUNSETIFF on /dev/net/tun, bringing the tap up, adding it to a bridge
  "dac_override", // images, kernels and /dev/kvm owned by another user (a CI checkout)
  "dac_read_search", // directories of such files
];

const CAPABILITY = /^[a-z_]+$/;

/** A plan that cannot be expressed (a bad capability name). */
export class SandboxPlanError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Enters the cgroups named before "--", then execs what follows it. */
const ENTER_CGROUPS = 'for f; do [ "$f" = -- ] && break; echo $$ >"$f" || exit 125; shift; done; ' +
  'shift; exec "$@"';

/** The argv prefix that applies `plan` and then execs the argv placed after it. */
export function launcherPrefix(plan: SandboxPlan): string[] {
  const prefix: string[] = [];
  if (plan.cgroupProcs.length > 0) {
    prefix.push("/bin/sh", "-c", ENTER_CGROUPS, "denovisor-cgroup", ...plan.cgroupProcs, "--");
  }
  if (plan.namespaces) prefix.push("unshare", "--ipc", "--uts", "--");
  if (plan.capabilities !== undefined) {
    for (const name of plan.capabilities) {
      if (!CAPABILITY.test(name)) throw new SandboxPlanError(`'${name}' is not a capability name`);
    }
    const bounding = ["-all", ...plan.capabilities.map((name) => `+${name}`)].join(",");
    prefix.push("setpriv", "--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all");
    prefix.push(`--bounding-set=${bounding}`);
    if (plan.user) {
      prefix.push(`--reuid=${plan.user.uid}`, `--regid=${plan.user.gid}`, "--clear-groups");
    }
    prefix.push("--");
  }
  return prefix;
}

/** Which confinement steps work on this host (each tried once with /bin/true). */
export interface SandboxSupport {
  namespaces: boolean;
  setpriv: boolean;
}

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
    namespaces: await works([
      ...launcherPrefix({ cgroupProcs: [], namespaces: true }),
      "/bin/true",
    ]),
    setpriv: await works([
      ...launcherPrefix({ cgroupProcs: [], namespaces: false, capabilities: VMM_CAPABILITIES }),
      "/bin/true",
    ]),
  }))();
  return support;
}
