/**
 * `denovisor check`: can this host run VMs, and how well?
 *
 * @module
 */

import {
  Kvm,
  KVM_DEVICE,
  kvmDevicePath,
  KvmUnavailableError,
  REQUIRED_CAPABILITIES,
} from "../core/kvm.ts";
import { KVM_CAP } from "../ffi/kvm/ioctls.ts";
import { EXIT_STATUS } from "../core/vm_end.ts";
import { parseCommandArgs } from "./usage_error.ts";
import { sandboxChecks } from "../manager/sandbox/host_check.ts";

export const CHECK_HELP = `Usage: denovisor check [--json]

Checks that this host can run VMs: ${KVM_DEVICE}, its permissions, the KVM API version,
the capabilities Denovisor needs, which parts of the VMM sandbox the host provides
(seccomp, cgroups, namespaces, jail, privilege drop, the VMM's user: a missing one is a
warning here, and the daemon refuses to start sandboxed domains without it), and whether
guest kernel code runs natively.
Exits 0 when VMs can run, 1 when they cannot.`;

interface CheckLine {
  ok: boolean;
  warning?: boolean;
  what: string;
  detail: string;
}

/** The vendor module behind /dev/kvm (kvm_intel, kvm_amd, kvm_pvm...), if one is loaded. */
function kvmBackendModule(): string | undefined {
  try {
    return [...Deno.readDirSync("/sys/module")]
      .map((e) => e.name)
      .find((name) => name.startsWith("kvm_"));
  } catch {
    return undefined;
  }
}

/** Whether the CPU virtualizes natively; without vmx/svm, KVM emulates guest CPL0 code. */
async function hardwareVirtualization(): Promise<CheckLine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  const native = flags.includes("vmx") || flags.includes("svm");
  const backend = kvmBackendModule() ?? "(unknown module)";
  return native
    ? { ok: true, what: "hardware virtualization", detail: `vmx/svm present (${backend})` }
    : {
      ok: true,
      warning: true,
      what: "hardware virtualization",
      detail: `no vmx/svm: KVM backend ${backend} emulates guest kernel (CPL0) code, ` +
        `about 500x slower than hardware; user-mode guest code runs natively`,
    };
}

function kvmLines(): CheckLine[] {
  const lines: CheckLine[] = [];
  let kvm: Kvm;
  try {
    kvm = Kvm.open();
  } catch (error) {
    const detail = error instanceof KvmUnavailableError ? error.message : String(error);
    return [{ ok: false, what: kvmDevicePath(), detail }];
  }
  try {
    lines.push({ ok: true, what: kvmDevicePath(), detail: "opened read-write" });
    lines.push({ ok: true, what: "API version", detail: String(kvm.apiVersion()) });
    for (const [cap, why] of REQUIRED_CAPABILITIES) {
      const ok = kvm.checkExtension(KVM_CAP[cap]) > 0;
      lines.push({ ok, what: `KVM_CAP_${cap}`, detail: ok ? why : `missing: needed for ${why}` });
    }
    lines.push({ ok: true, what: "max vCPUs per VM", detail: String(kvm.maxVcpus()) });
  } finally {
    kvm.close();
  }
  return lines;
}

/** Runs `denovisor check`; returns the exit status. */
export async function checkCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs("check", args, {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(CHECK_HELP);
    return EXIT_STATUS.OK;
  }
  const lines = [...kvmLines(), ...await sandboxChecks(), await hardwareVirtualization()];
  const ok = lines.every((l) => l.ok);
  if (values.json) {
    console.log(JSON.stringify({ ok, checks: lines }, null, 2));
  } else {
    for (const l of lines) {
      const mark = !l.ok ? "FAIL" : l.warning ? "WARN" : " ok ";
      console.log(`[${mark}] ${l.what}: ${l.detail}`);
    }
    console.log(ok ? "This host can run Denovisor VMs." : "This host cannot run VMs (see FAIL).");
  }
  return ok ? EXIT_STATUS.OK : EXIT_STATUS.ERROR;
}
