/**
 * `denovisor run`: boots one VM in the foreground, its serial console on the terminal
 * (or a file), and exits with the guest's status.
 *
 * @module
 */

import { ESCAPE_BYTE } from "../devices/console/escape_filter.ts";
import { escapeOption } from "./escape_key.ts";
import { FileConsole } from "../devices/console/file_console.ts";
import { openConsole } from "../devices/console/open_console.ts";
import {
  type ConsoleSpec,
  ConsoleSpecError,
  parseConsoleSpec,
} from "../devices/console/console_spec.ts";
import type { ConsoleBackend } from "../devices/console/console.ts";
import { Kvm } from "../core/kvm.ts";
import { DEFAULT_FIRMWARE } from "../core/boot/firmware_rom.ts";
import { describeEnd, EXIT_STATUS, exitStatusFor, type VmEndReason } from "../core/vm_end.ts";
import { type BootImage, build, loadBootImage, restore } from "../vmm/builder.ts";
import { dropVcpuWorkers, prestartVcpuWorkers } from "../vmm/vcpu_workers.ts";
import type { Machine } from "../vmm/machine.ts";
import type {
  VmmBootConfig,
  VmmDiskConfig,
  VmmMachineConfig,
  VmmNicConfig,
} from "../vmm/vmm_config.ts";
import { parseCommandArgs, parseSizeArgument, UsageError } from "./usage_error.ts";
import {
  DEFAULT_SECCOMP_MODE,
  enterSeccomp,
  type SeccompMode,
} from "../vmm/sandbox/seccomp_filter.ts";
import { seccompFlag } from "./vmm.ts";
import {
  type DiskSpec,
  type NicSpec,
  parseDiskSpec,
  parseLimit,
  parseNicSpec,
} from "./device_specs.ts";
import {
  parseRunStateOptions,
  restoredMachine,
  RUN_STATE_FLAGS,
  RUN_STATE_HELP,
  type RunStateOptions,
  SignalSaver,
} from "./run_state.ts";

export const RUN_HELP = `Usage: denovisor run [options]

Boots one VM in the foreground with its serial console on this terminal and exits with
the guest's status. Without --kernel it boots the embedded demo guest.

Options:
  --kernel PATH        Kernel to boot: bzImage, vmlinux (ELF) or a PVH ELF
                       (default: the embedded demo guest)
  --initrd PATH        Initial ramdisk
  --cmdline TEXT       Kernel command line
                       (default for --kernel: "${"console=ttyS0 reboot=k panic=1"}")
  --firmware           Boot through Debian's SeaBIOS (${DEFAULT_FIRMWARE}) instead of a
                       kernel: an unmodified boot sector or CD, text on the serial console
  --firmware-file PATH Boot through another BIOS image (whole 64 KiB blocks, <= 256 KiB)
  --cdrom PATH         An ISO image on an AHCI CD-ROM drive, read-only (repeatable;
                       firmware boot only)
  --boot-order LIST    Firmware boot order: disk,cdrom (default) or cdrom,disk
  --memory SIZE        Guest RAM, e.g. 512M or 2G; a bare number is MiB (default 256M)
  --cpus N             Number of vCPUs (default 1)
  --console SPEC       stdio (default), file:PATH or null
  --escape KEY         The console's escape key, e.g. ^] (default ^A, as QEMU)
  --on-reboot ACTION   exit (default) or restart, when the guest resets
  --disk SPEC          A virtio-blk disk (repeatable):
                       PATH[,readonly][,format=raw|qcow2][,transport=pci|mmio][,serial=ID]
                       [,bw=RATE][,ops=RATE]  (format: probed when omitted)
                       [,bus=sata]: on the AHCI controller instead (with --firmware)
  --nic SPEC           A virtio-net NIC on a tap (repeatable): tap=NAME|auto[,mac=MAC]
                       [,bridge=BR][,transport=pci|mmio][,bw=RATE][,ops=RATE]
  --rng                A virtio-rng device fed by getrandom(2)
  --rng-limit SPEC     Its rate limit, e.g. bw=1M
  --balloon            A virtio-balloon device
  --virtio-console     A virtio console on the same console backend (it takes the input)
  --transport T        Default transport of virtio devices: pci (default) or mmio
  --seccomp MODE       System-call filter entered before the guest runs: strict
                       (default: a call outside the list kills), log (unknown calls
                       are logged, forbidden ones kill) or off
  --no-sandbox         The same as --seccomp off, with a warning: run unconfined
${RUN_STATE_HELP}
  -h, --help           Show this help

Rates: bw=10M is 10 MiB/s, ops=1000 operations/s; bw_burst= and ops_burst= add a
one-time burst. virtio-mmio devices are announced on the kernel command line.
Console: on a terminal, Ctrl-A x ends the VM (as in QEMU: run owns it); Ctrl-A Ctrl-A
sends Ctrl-A; --escape picks another key (--escape ^] makes it Ctrl-] x). 'denovisor
console' of a daemon's domain detaches with Ctrl-] (its --escape changes that key).
Exit status: the guest's debug-exit status (0-119), 0 after a reset or power-off,
120 triple fault, 121 instruction KVM could not emulate, 122 entry failure,
123 vCPU error, 1 for errors before the VM ran, 2 for bad usage.`;

const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1";

/** The `run` options after validation: the machine as a VMM config, and the console. */
interface RunOptions {
  config: VmmMachineConfig;
  /** The boot files of `config.boot`, read before KVM is opened. */
  boot: BootImage;
  consoleSpec: ConsoleSpec;
  /** The console's escape key (--escape). */
  escapeByte: number;
  restartOnReboot: boolean;
  /** --restore, --paused, --force, --save-on-signal. */
  state: RunStateOptions;
  /** Entered before the first vCPU runs. */
  seccomp: SeccompMode;
}

async function parseRunOptions(args: string[]): Promise<RunOptions | undefined> {
  const { values } = parseCommandArgs("run", args, {
    kernel: { type: "string" },
    firmware: { type: "boolean" },
    "firmware-file": { type: "string" },
    cdrom: { type: "string", multiple: true, default: [] },
    "boot-order": { type: "string" },
    initrd: { type: "string" },
    cmdline: { type: "string" },
    memory: { type: "string", default: "256M" },
    cpus: { type: "string", default: "1" },
    console: { type: "string", default: "stdio" },
    escape: { type: "string" },
    "on-reboot": { type: "string", default: "exit" },
    disk: { type: "string", multiple: true, default: [] },
    nic: { type: "string", multiple: true, default: [] },
    rng: { type: "boolean" },
    "rng-limit": { type: "string" },
    balloon: { type: "boolean" },
    "virtio-console": { type: "boolean" },
    transport: { type: "string", default: "pci" },
    seccomp: { type: "string", default: DEFAULT_SECCOMP_MODE },
    "no-sandbox": { type: "boolean" },
    help: { type: "boolean", short: "h" },
    ...RUN_STATE_FLAGS,
  });
  if (values.help) return undefined;
  const state = parseRunStateOptions(values, args);
  const seccomp = noSandbox(values["no-sandbox"], values.seccomp);
  if (!/^\d+$/.test(values.cpus)) {
    throw new UsageError(`--cpus: '${values.cpus}' is not a whole number of vCPUs`);
  }
  const onReboot = values["on-reboot"];
  if (onReboot !== "exit" && onReboot !== "restart") {
    throw new UsageError(`--on-reboot: '${onReboot}' is not one of exit, restart`);
  }
  const escapeByte = escapeOption(values.escape, ESCAPE_BYTE);
  if (state.restore) {
    const restartOnReboot = onReboot === "restart";
    const restored = await restoredMachine(state.restore.stateFile, restartOnReboot);
    const consoleSpec = parseConsole(values.console);
    return { ...restored, consoleSpec, escapeByte, restartOnReboot, state, seccomp };
  }
  const transport = values.transport;
  if (transport !== "pci" && transport !== "mmio") {
    throw new UsageError(`--transport: '${transport}' is not one of pci, mmio`);
  }
  if (values["rng-limit"] !== undefined && !values.rng) {
    throw new UsageError("--rng-limit: add --rng for the device it limits");
  }
  const diskSpecs = values.disk.map((spec) => parseDiskSpec(spec, transport));
  const disks = diskSpecs.filter((spec) => spec.bus === "virtio").map(diskConfig);
  const sataDisks = diskSpecs.filter((spec) => spec.bus === "sata")
    .map(({ path, format, readOnly }) => ({ path, format, readOnly }));
  const nics = values.nic.map((spec) => nicConfig(parseNicSpec(spec, transport)));
  const rngLimit = values["rng-limit"] === undefined
    ? undefined
    : parseLimit(values["rng-limit"], "--rng-limit");
  const firmware = firmwareBoot(values);
  if (sataDisks.length > 0 && firmware === undefined) {
    throw new UsageError(
      "--disk: bus=sata disks need --firmware (the AHCI controller comes with it)",
    );
  }
  const boot: VmmBootConfig = firmware ??
    (values.kernel === undefined
      ? { kind: "demo", cmdline: values.cmdline, initrd: values.initrd }
      : {
        kind: "linux",
        kernel: values.kernel,
        initrd: values.initrd,
        cmdline: values.cmdline ?? DEFAULT_CMDLINE,
      });
  // Read here, before KVM is opened: a missing kernel is named even on a host without KVM.
  const bootImage = await loadBootImage(boot);
  const config: VmmMachineConfig = {
    vcpus: Number(values.cpus),
    memoryBytes: parseSizeArgument(values.memory, "--memory", "m"),
    boot,
    disks,
    nics,
    rng: values.rng ? { rateLimit: rngLimit } : undefined,
    balloon: values.balloon ?? false,
    virtioConsole: values["virtio-console"] ?? false,
    transport,
    cdroms: values.cdrom,
    sataDisks,
  };
  return {
    config,
    boot: bootImage,
    consoleSpec: parseConsole(values.console),
    escapeByte,
    restartOnReboot: onReboot === "restart",
    state,
    seccomp,
  };
}

/** The firmware boot `--firmware`, `--firmware-file` and `--boot-order` ask for, if any. */
function firmwareBoot(values: {
  firmware?: boolean;
  "firmware-file"?: string;
  "boot-order"?: string;
  cdrom: string[];
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}): VmmBootConfig | undefined {
  const file = values["firmware-file"];
  if (values.firmware && file !== undefined) {
    throw new UsageError("--firmware-file: give either --firmware or --firmware-file, not both");
  }
  if (!values.firmware && file === undefined) {
    if (values.cdrom.length > 0) throw new UsageError("--cdrom: CD-ROMs need --firmware");
    if (values["boot-order"] !== undefined) throw new UsageError("--boot-order: add --firmware");
    return undefined;
  }
  for (const flag of ["kernel", "initrd", "cmdline"] as const) {
    if (values[flag] !== undefined) {
      throw new UsageError(
        `--${flag}: a firmware boot loads no kernel; drop --${flag} or --firmware`,
      );
    }
  }
  const order = values["boot-order"]?.split(",");
  if (
    order !== undefined &&
    (order.some((o) => o !== "disk" && o !== "cdrom") || new Set(order).size !== order.length)
  ) {
    throw new UsageError(`--boot-order: '${values["boot-order"]}' is not disk,cdrom or cdrom,disk`);
  }
  return {
    kind: "firmware",
    firmware: file ?? DEFAULT_FIRMWARE,
    ...(order === undefined ? {} : { order: order as ("disk" | "cdrom")[] }),
  };
}

/** A `--disk` as the VMM config says it (paths stay as typed: `run` runs where it was called). */
function diskConfig(spec: DiskSpec): VmmDiskConfig {
  return {
    path: spec.path,
    format: spec.format,
    readOnly: spec.readOnly,
    transport: spec.transport,
    serial: spec.serial,
    rateLimit: spec.rateLimit,
  };
}

function nicConfig(spec: NicSpec): VmmNicConfig {
  return {
    tap: spec.tap,
    mac: spec.mac,
    bridge: spec.bridge,
    transport: spec.transport,
    rateLimit: spec.rateLimit,
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
  // --restore: the vCPU Workers load while the state is restored (vmm/vcpu_workers.ts).
  if (options.state.restore) prestartVcpuWorkers(options.config.vcpus);
  using kvm = Kvm.open();
  let machine: Machine | undefined;
  let input: (bytes: Uint8Array) => void = () => {};
  // A stop can arrive between two machines of a restart loop: remember it.
  let stopSource: string | undefined;
  const stop = (source: string) => {
    stopSource ??= source;
    machine?.stop(source);
  };
  const console_ = openConsole(options.consoleSpec, {
    onEscape: () => stop("console escape"),
    stdio: { escapeByte: options.escapeByte },
  });
  const { restore: restoreFrom, saveOnSignal } = options.state;
  const saver = saveOnSignal && new SignalSaver(saveOnSignal, options.config, kvm);
  const onTerm = () => saver && machine ? saver.save(machine, stop) : stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  const onCont = () => machine?.resume(); // --paused: SIGCONT runs the vCPUs
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  if (restoreFrom?.paused) Deno.addSignalListener("SIGCONT", onCont);
  try {
    let reason: VmEndReason = { kind: "stopped", source: "start" };
    let first = true;
    while (stopSource === undefined) {
      const context = { kvm, console: console_, boot: options.boot };
      // The first machine of --restore comes from the state; a reboot boots afresh.
      const built = first && restoreFrom
        ? await restore(options.config, restoreFrom, context)
        : build(options.config, context);
      machine = built;
      input = (bytes) => built.consoleInput(bytes);
      startInputOnce(console_, (bytes) => input(bytes));
      if (first) enterSeccomp(options.seccomp, (line) => console.error(`denovisor: ${line}`));
      machine.start({ paused: first && restoreFrom?.paused });
      first = false;
      reason = await machine.ended;
      if (saver) await saver.idle; // the save reads the machine's RAM: close it after
      await machine.close();
      if (!(reason.kind === "reset" && options.restartOnReboot)) break;
    }
    if (stopSource !== undefined) reason = { kind: "stopped", source: stopSource };
    await console_.flush();
    const status = exitStatusFor(reason);
    reportEnd(reason, status);
    // The guest's output went nowhere (a full disk, /dev/full): say so, and fail.
    if (console_ instanceof FileConsole && console_.writeError) {
      console.error(
        `denovisor: cannot write the console file ${console_.path}: ` +
          `${console_.writeError.message}; ${console_.stats.bytesDropped} bytes of guest ` +
          `output were lost`,
      );
      return status === EXIT_STATUS.OK ? EXIT_STATUS.ERROR : status;
    }
    return status;
  } finally {
    dropVcpuWorkers();
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
    if (restoreFrom?.paused) Deno.removeSignalListener("SIGCONT", onCont);
    if (saver) await saver.idle;
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

/**
 * `--no-sandbox` (as `"sandbox": false` in a definition) turns the system-call filter off
 * and says so; naming a filter mode as well is a contradiction.
 */
function noSandbox(off: boolean | undefined, mode: string): SeccompMode {
  if (!off) return seccompFlag(mode);
  if (mode !== DEFAULT_SECCOMP_MODE) {
    throw new UsageError(`--no-sandbox and --seccomp ${mode} contradict each other`);
  }
  console.error("denovisor: warning: --no-sandbox: this VMM runs without its system-call filter");
  return "off";
}
