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
import type { Machine } from "../core/machine.ts";
import { describeEnd, EXIT_STATUS, exitStatusFor, type VmEndReason } from "../core/vm_end.ts";
import { DEMO_GUEST_ELF } from "../guests/embedded/demo_guest.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";
import { parseSize } from "./units.ts";
import { readInputFile } from "./files.ts";
import { parseDiskSpec, parseLimit, parseNicSpec } from "./device_specs.ts";
import type { RunDeviceOptions } from "./run_devices.ts";
import { buildMachineWithDevices } from "./run_machine.ts";

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
  --disk SPEC          A virtio-blk disk (repeatable):
                       PATH[,readonly][,format=raw|qcow2][,transport=pci|mmio][,serial=ID]
                       [,bw=RATE][,ops=RATE]  (format: probed when omitted)
  --nic SPEC           A virtio-net NIC on a tap (repeatable): tap=NAME|auto[,mac=MAC]
                       [,bridge=BR][,transport=pci|mmio][,bw=RATE][,ops=RATE]
  --rng                A virtio-rng device fed by getrandom(2)
  --rng-limit SPEC     Its rate limit, e.g. bw=1M
  --balloon            A virtio-balloon device
  --virtio-console     A virtio console on the same console backend (it takes the input)
  --transport T        Default transport of virtio devices: pci (default) or mmio
  -h, --help           Show this help

Rates: bw=10M is 10 MiB/s, ops=1000 operations/s; bw_burst= and ops_burst= add a
one-time burst. virtio-mmio devices are announced on the kernel command line.
Console: on a terminal, Ctrl-A x ends the VM; Ctrl-A Ctrl-A sends Ctrl-A.
Exit status: the guest's debug-exit status (0-119), 0 after a reset or power-off,
120 triple fault, 121 instruction KVM could not emulate, 122 entry failure,
123 vCPU error, 1 for errors before the VM ran, 2 for bad usage.`;

const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1";

/** The `run` options after validation. */
interface RunOptions {
  devices: RunDeviceOptions;
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
    disk: { type: "string", multiple: true, default: [] },
    nic: { type: "string", multiple: true, default: [] },
    rng: { type: "boolean" },
    "rng-limit": { type: "string" },
    balloon: { type: "boolean" },
    "virtio-console": { type: "boolean" },
    transport: { type: "string", default: "pci" },
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
  const transport = values.transport;
  if (transport !== "pci" && transport !== "mmio") {
    throw new UsageError(`--transport: '${transport}' is not one of pci, mmio`);
  }
  if (values["rng-limit"] !== undefined && !values.rng) {
    throw new UsageError("--rng-limit: add --rng for the device it limits");
  }
  const devices: RunDeviceOptions = {
    disks: values.disk.map((spec) => parseDiskSpec(spec, transport)),
    nics: values.nic.map((spec) => parseNicSpec(spec, transport)),
    rng: values.rng
      ? {
        transport,
        rateLimit: values["rng-limit"] === undefined
          ? undefined
          : parseLimit(values["rng-limit"], "--rng-limit"),
      }
      : undefined,
    balloon: values.balloon ? { transport } : undefined,
    virtioConsole: values["virtio-console"] ? { transport } : undefined,
  };
  return {
    devices,
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
  let input: (bytes: Uint8Array) => void = () => {};
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
      const built = buildMachineWithDevices(kvm, options, console_);
      machine = built.machine;
      input = built.input;
      startInputOnce(console_, (bytes) => input(bytes));
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
function startInputOnce(console_: ConsoleBackend, deliver: (bytes: Uint8Array) => void): void {
  if (inputStarted.has(console_)) return;
  inputStarted.add(console_);
  console_.startInput(deliver);
}

function reportEnd(reason: VmEndReason, status: number): void {
  const line = `denovisor: ${describeEnd(reason)}`;
  if (status >= EXIT_STATUS.TRIPLE_FAULT) console.error(line);
  else if (Deno.stderr.isTerminal()) console.error(line);
}
