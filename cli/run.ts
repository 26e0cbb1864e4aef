/**
 * `denovisor run`: boots one VM in the foreground, its serial console on the terminal
 * (or a file), and exits with the guest's status.
 *
 * @module
 */

import { openConsole } from "../devices/console/open_console.ts";
import {
  type ConsoleSpec,
  ConsoleSpecError,
  parseConsoleSpec,
} from "../devices/console/console_spec.ts";
import type { ConsoleBackend } from "../devices/console/console.ts";
import { Kvm } from "../core/kvm.ts";
import { Machine } from "../core/machine.ts";
import { describeEnd, EXIT_STATUS, exitStatusFor, type VmEndReason } from "../core/vm_end.ts";
import { DEMO_GUEST_ELF } from "../guests/embedded/demo_guest.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";
import { parseSize } from "./units.ts";
import { readInputFile } from "./files.ts";

export const RUN_HELP = `Usage: denovisor run [options]

Boots one VM in the foreground with its serial console on this terminal and exits with
the guest's status. Without --kernel it boots the embedded demo guest.

Options:
  --kernel PATH        Kernel to boot: bzImage, vmlinux (ELF) or a PVH ELF
                       (default: the embedded demo guest)
  --initrd PATH        Initial ramdisk
  --cmdline TEXT       Kernel command line
                       (default for --kernel: "${"console=ttyS0 reboot=k panic=1"}")
  --memory SIZE        Guest RAM, e.g. 512M or 2G; a bare number is MiB (default 256M)
  --cpus N             Number of vCPUs (default 1)
  --console SPEC       stdio (default), file:PATH or null
  --on-reboot ACTION   exit (default) or restart, when the guest resets
  -h, --help           Show this help

Console: on a terminal, Ctrl-A x ends the VM; Ctrl-A Ctrl-A sends Ctrl-A.
Exit status: the guest's debug-exit status (0-119), 0 after a reset or power-off,
120 triple fault, 121 instruction KVM could not emulate, 122 entry failure,
123 vCPU error, 1 for errors before the VM ran, 2 for bad usage.`;

const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1";

/** The `run` options after validation. */
interface RunOptions {
  kernel: Uint8Array;
  kernelPath: string;
  initrd?: Uint8Array;
  cmdline: string;
  memoryBytes: number;
  cpus: number;
  consoleSpec: ConsoleSpec;
  restartOnReboot: boolean;
}

async function parseRunOptions(args: string[]): Promise<RunOptions | undefined> {
  const { values } = parseCommandArgs("run", args, {
    kernel: { type: "string" },
    initrd: { type: "string" },
    cmdline: { type: "string" },
    memory: { type: "string", default: "256M" },
    cpus: { type: "string", default: "1" },
    console: { type: "string", default: "stdio" },
    "on-reboot": { type: "string", default: "exit" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return undefined;
  if (!/^\d+$/.test(values.cpus)) {
    throw new UsageError(`--cpus: '${values.cpus}' is not a whole number of vCPUs`);
  }
  const onReboot = values["on-reboot"];
  if (onReboot !== "exit" && onReboot !== "restart") {
    throw new UsageError(`--on-reboot: '${onReboot}' is not one of exit, restart`);
  }
  return {
    kernel: values.kernel === undefined
      ? DEMO_GUEST_ELF
      : await readInputFile(values.kernel, "kernel"),
    kernelPath: values.kernel ?? "the embedded demo guest",
    initrd: values.initrd === undefined ? undefined : await readInputFile(values.initrd, "initrd"),
    cmdline: values.cmdline ?? (values.kernel === undefined ? "" : DEFAULT_CMDLINE),
    memoryBytes: parseSize(values.memory, "--memory", "m"),
    cpus: Number(values.cpus),
    consoleSpec: parseConsole(values.console),
    restartOnReboot: onReboot === "restart",
  };
}

function parseConsole(text: string): ConsoleSpec {
  try {
    return parseConsoleSpec(text);
  } catch (error) {
    if (error instanceof ConsoleSpecError) throw new UsageError(`--console: ${error.message}`);
    throw error;
  }
}

/** Runs `denovisor run`; returns the process exit status. */
export async function runCommand(args: string[]): Promise<number> {
  const options = await parseRunOptions(args);
  if (options === undefined) {
    console.log(RUN_HELP);
    return EXIT_STATUS.OK;
  }
  using kvm = Kvm.open();
  let machine: Machine | undefined;
  // A stop can arrive between two machines of a restart loop: remember it.
  let stopSource: string | undefined;
  const stop = (source: string) => {
    stopSource ??= source;
    machine?.stop(source);
  };
  const console_ = openConsole(options.consoleSpec, { onEscape: () => stop("console escape") });
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  try {
    let reason: VmEndReason = { kind: "stopped", source: "start" };
    while (stopSource === undefined) {
      machine = Machine.build(kvm, { ...options, console: console_ });
      startInputOnce(console_, () => machine!);
      machine.start();
      reason = await machine.ended;
      await machine.close();
      if (!(reason.kind === "reset" && options.restartOnReboot)) break;
    }
    if (stopSource !== undefined) reason = { kind: "stopped", source: stopSource };
    await console_.flush();
    const status = exitStatusFor(reason);
    reportEnd(reason, status);
    return status;
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
    await machine?.close();
    await console_.close();
  }
}

const inputStarted = new WeakSet<ConsoleBackend>();

/** Console input goes to whichever machine is current (a restart builds a new one). */
function startInputOnce(console_: ConsoleBackend, current: () => Machine): void {
  if (inputStarted.has(console_)) return;
  inputStarted.add(console_);
  console_.startInput((bytes) => current().serial.receive(bytes));
}

function reportEnd(reason: VmEndReason, status: number): void {
  const line = `denovisor: ${describeEnd(reason)}`;
  if (status >= EXIT_STATUS.TRIPLE_FAULT) console.error(line);
  else if (Deno.stderr.isTerminal()) console.error(line);
}
