/**
 * Which parts of the VMM sandbox this host provides, for `denovisor check`. A missing
 * part is a warning, not a failure: the daemon starts VMMs without it and says so in the
 * domain's log (./vmm_sandbox.ts).
 *
 * @module
 */

import { detectCgroups, DomainCgroup } from "./cgroup.ts";
import { sandboxSupport } from "./launcher.ts";

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

/** The sandbox lines of `denovisor check`. */
export async function sandboxChecks(): Promise<SandboxCheck[]> {
  const support = await sandboxSupport();
  return [
    seccompCheck(),
    cgroupCheck(),
    support.namespaces
      ? { ok: true, what: "sandbox: namespaces", detail: "IPC and UTS (unshare)" }
      : { ok: true, warning: true, what: "sandbox: namespaces", detail: "unshare refused here" },
    support.setpriv
      ? {
        ok: true,
        what: "sandbox: privileges",
        detail: "no_new_privs and a reduced capability bounding set (setpriv)",
      }
      : {
        ok: true,
        warning: true,
        what: "sandbox: privileges",
        detail: "capabilities kept: setpriv (util-linux) is missing or refused here",
      },
  ];
}
