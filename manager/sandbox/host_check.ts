/**
 * Which parts of the VMM sandbox this host provides, for `denovisor check`. A missing
 * part is a warning there (VMs can still run, unconfined); the daemon refuses to start a
 * sandboxed domain without it, naming it and the opt-out (./vmm_sandbox.ts).
 *
 * @module
 */

import { detectCgroups, DomainCgroup } from "./cgroup.ts";
import { SANDBOX_FEATURES, sandboxSupport } from "./launcher.ts";
import { vmmUser } from "./vmm_user.ts";

/** One line of `denovisor check`. */
export interface SandboxCheck {
  ok: true;
  warning?: boolean;
  what: string;
  detail: string;
}

function seccompCheck(): SandboxCheck {
  const what = "sandbox: seccomp";
  let actions = "";
  try {
    actions = Deno.readTextFileSync("/proc/sys/kernel/seccomp/actions_avail");
  } catch {
    return { ok: true, warning: true, what, detail: "no seccomp filters (CONFIG_SECCOMP_FILTER)" };
  }
  const missing = ["kill_process", "log", "errno"].filter((a) => !actions.includes(a));
  return missing.length === 0
    ? { ok: true, what, detail: "filters with kill_process, log and errno actions" }
    : { ok: true, warning: true, what, detail: `missing actions: ${missing.join(", ")}` };
}

function cgroupCheck(): SandboxCheck {
  const what = "sandbox: cgroups";
  try {
    const host = detectCgroups();
    DomainCgroup.create(host, `check-${Deno.pid}`, { memoryBytes: 1 << 30, pids: 64 }).remove();
    const where = host.version === 2 ? host.root : host.memory.replace(/\/memory\b.*/, "");
    return {
      ok: true,
      what,
      detail: `v${host.version} memory, pids and cpu limits under ${where}`,
    };
  } catch (error) {
    return { ok: true, warning: true, what, detail: `no limits: ${(error as Error).message}` };
  }
}

/** What a missing part means, added to its warning. */
const REFUSED =
  'sandboxed domains will not start here; "sandbox": false in a definition runs its VMM unconfined';

function featureLine(what: string, ok: boolean, detail: string, missing: string): SandboxCheck {
  return ok
    ? { ok: true, what, detail }
    : { ok: true, warning: true, what, detail: `${missing}: ${REFUSED}` };
}

function userLine(): SandboxCheck {
  const what = "sandbox: VMM user";
  try {
    const user = vmmUser();
    return {
      ok: true,
      what,
      detail: `uid ${user.uid} gid ${user.gid} (${user.source}${
        user.source === "no denovisor account" ? "; denovisor install creates one" : ""
      }), no capabilities`,
    };
  } catch (error) {
    return { ok: true, warning: true, what, detail: `${(error as Error).message}: ${REFUSED}` };
  }
}

/** The sandbox lines of `denovisor check`. */
export async function sandboxChecks(): Promise<SandboxCheck[]> {
  const support = await sandboxSupport();
  const lines = [
    seccompCheck(),
    cgroupCheck(),
    featureLine(
      "sandbox: namespaces",
      support.namespaces,
      "own mount, PID, network (loopback only), IPC and UTS namespaces (unshare)",
      `no ${SANDBOX_FEATURES.namespaces}`,
    ),
    featureLine(
      "sandbox: jail",
      support.jail && support.bash,
      "chroot into a per-domain directory holding only the VMM's program and files; " +
        "/dev/kvm, images, kernels and taps handed over as descriptors",
      `no ${support.bash ? SANDBOX_FEATURES.jail : SANDBOX_FEATURES.bash}`,
    ),
    featureLine(
      "sandbox: privileges",
      support.setpriv,
      "no_new_privs, every capability dropped (setpriv)",
      `no ${SANDBOX_FEATURES.setpriv}`,
    ),
    userLine(),
  ];
  // A host without seccomp filters or cgroups refuses too (./vmm_sandbox.ts).
  for (const line of lines.slice(0, 2)) {
    if (line.warning) line.detail += `: ${REFUSED}`;
  }
  return lines;
}
