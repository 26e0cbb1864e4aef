/**
 * `denovisor vmm --config FILE`: the process that runs one domain for the daemon (see
 * vmm/README.md). Users do not call it; `denovisor run` is the foreground equivalent.
 *
 * @module
 */

import { EXIT_STATUS } from "../core/vm_end.ts";
import { parseHandedDescriptors, setHandedDescriptors } from "../common/handed_descriptors.ts";
import { readVmmConfig } from "../vmm/config_parse.ts";
import { redirectStdioTo, runVmm } from "../vmm/vmm_process.ts";
import { awaitPoolOrder } from "../vmm/pool_order.ts";
import { prestartVcpuWorkers } from "../vmm/vcpu_workers.ts";
import { sendFds } from "../ffi/scm_rights.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";
import {
  parseSeccompMode,
  SECCOMP_MODES,
  type SeccompMode,
} from "../vmm/sandbox/seccomp_filter.ts";

export const VMM_HELP = `Usage: denovisor vmm --config FILE [--seccomp MODE] [--descriptors FILE]
       denovisor vmm --pool-socket FD

Runs one domain as the daemon's VMM process: reads FILE (a VmmConfig, see
vmm/vmm_config.ts), serves the control API on RUNDIR/vmm.sock and the console on
RUNDIR/console.sock, writes RUNDIR/vmm.pid once it listens and RUNDIR/end.json when
the VM ends. The daemon starts it; to run a VM by hand use 'denovisor run'.

Options:
  --config FILE   The VMM config (JSON)
  --seccomp MODE  System-call filter entered before the guest runs: strict (others
                  kill the VMM), log (others are logged by the kernel; forbidden
                  ones such as execve, ptrace, mount still kill), off
                  (default: strict)
  --descriptors FILE  Inherited descriptors to use instead of opening /dev/kvm, images,
                  kernels and taps (JSON {kvm, files: {PATH: FD}, taps: {NAME: FD}}):
                  the daemon's sandbox hands them to a VMM that cannot open them
  --pool-socket FD  Start ahead of any domain (the daemon's VMM pool, already jailed):
                  load, then wait on the inherited socket FD for one order (the
                  config's path, the seccomp mode and the descriptors, over
                  SCM_RIGHTS) and run that domain; exit 0 if the socket closes first
  -h, --help      Show this help

Exit status: 0 when the VM ended (end.json says how), 1 when it could not start
(the reason is on stderr and in the log file), 2 for bad usage.`;

/** Runs `denovisor vmm`; returns the process exit status. */
export async function vmmCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs("vmm", args, {
    config: { type: "string" },
    seccomp: { type: "string" },
    descriptors: { type: "string" },
    "pool-socket": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(VMM_HELP);
    return EXIT_STATUS.OK;
  }
  if (values["pool-socket"] !== undefined) {
    if (values.config !== undefined || values.descriptors !== undefined || values.seccomp) {
      throw new UsageError("vmm: --pool-socket takes its config and descriptors from the order");
    }
    return await runPooled(values["pool-socket"]);
  }
  if (values.config === undefined) throw new UsageError("vmm: --config FILE is required");
  const seccomp = values.seccomp === undefined ? undefined : seccompFlag(values.seccomp);
  if (values.descriptors !== undefined) {
    setHandedDescriptors(await readDescriptorTable(values.descriptors));
  }
  const config = await readVmmConfig(values.config);
  return await runVmm(config, { seccomp });
}

/**
 * A pooled VMM (vmm/pool_order.ts): warm up, tell the daemon, wait for the one domain it
 * will run. Everything is loaded before the wait (this module imports the whole VMM), and
 * vCPU 0's Worker loads meanwhile.
 */
async function runPooled(value: string): Promise<number> {
  const socket = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(socket >= 3)) throw new UsageError(`vmm: --pool-socket '${value}' is not a descriptor`);
  prestartVcpuWorkers(1);
  try {
    sendFds(socket, new Uint8Array([1]), []); // ready
  } catch {
    // Taken before it was ready: the order may already wait; the daemon's end is gone.
  }
  const order = awaitPoolOrder(socket);
  if (order === undefined) return EXIT_STATUS.OK; // the daemon went, or drained the pool
  setHandedDescriptors(order.descriptors);
  const config = await readVmmConfig(order.config);
  // From here on what goes wrong belongs in the domain's log, not the pool's.
  redirectStdioTo(config.logFile);
  return await runVmm(config, { seccomp: order.seccomp });
}

async function readDescriptorTable(path: string) {
  try {
    return parseHandedDescriptors(JSON.parse(await Deno.readTextFile(path)));
  } catch (error) {
    throw new UsageError(`--descriptors ${path}: ${(error as Error).message}`);
  }
}

/** The --seccomp value, or a usage error naming the modes. */
export function seccompFlag(value: string): SeccompMode {
  try {
    return parseSeccompMode(value);
  } catch {
    throw new UsageError(`--seccomp: '${value}' is not one of ${SECCOMP_MODES.join(", ")}`);
  }
}
