/**
 * `denovisor run --restore FILE [--paused] [--force]` and `run --save-on-signal FILE`: the
 * foreground VMM's side of save and restore (vmm/snapshot/).
 *
 * - `--restore FILE` builds the machine from a state file instead of booting: its config
 *   (vCPUs, RAM, devices, disks, NICs with their MACs) is the one recorded in the state,
 *   so the flags that shape a machine are refused beside it. `--paused` leaves the vCPUs
 *   paused until the process gets SIGCONT (`kill -CONT PID`, or `fg` after Ctrl-Z);
 *   `--force` restores even if a disk is not the image it was at the save.
 * - `--save-on-signal FILE`: on SIGTERM the VM is paused and saved to FILE and FILE.mem
 *   (beside it), then stopped, and `run` exits 0 (as `xl save`). SIGINT still stops it
 *   without saving; a save that fails is reported and the VM runs on. (SIGUSR1 is Deno's
 *   inspector signal and SIGUSR2 kicks vCPUs, hence SIGTERM.)
 *
 * @module
 */

import { resolve } from "node:path";
import type { Kvm } from "../core/kvm.ts";
import { type BootImage, loadBootImage } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { parseSavedConfig } from "../vmm/snapshot/config_match.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import { readStateFile } from "../vmm/snapshot/state_file.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import { UsageError } from "./usage_error.ts";

/** The help lines of the state options. */
export const RUN_STATE_HELP =
  `  --restore FILE       Restore the VM saved in state FILE (its memory file beside it)
                       instead of booting; the machine is the one saved
  --paused             With --restore: start with the vCPUs paused until SIGCONT
  --force              With --restore: restore although a disk changed since the save
  --save-on-signal FILE
                       On SIGTERM, save the VM to FILE and FILE.mem, then exit 0`;

/** The flags `parseCommandArgs` must know for the state options. */
export const RUN_STATE_FLAGS = {
  restore: { type: "string" },
  paused: { type: "boolean" },
  force: { type: "boolean" },
  "save-on-signal": { type: "string" },
} as const;

/** Flags that shape a machine: a restored machine takes its shape from the state. */
const MACHINE_FLAGS = [
  "kernel",
  "initrd",
  "cmdline",
  "firmware",
  "firmware-file",
  "cdrom",
  "boot-order",
  "memory",
  "cpus",
  "disk",
  "nic",
  "rng",
  "rng-limit",
  "balloon",
  "virtio-console",
  "transport",
];

/** What the state options asked for. */
export interface RunStateOptions {
  restore?: { stateFile: string; paused: boolean; force: boolean };
  /** Absolute path of the state file a SIGTERM saves to. */
  saveOnSignal?: string;
}

/** Checks the state options against each other and the rest of `args`. */
export function parseRunStateOptions(
  values: { restore?: string; paused?: boolean; force?: boolean; "save-on-signal"?: string },
  args: readonly string[],
): RunStateOptions {
  const options: RunStateOptions = {};
  if (values["save-on-signal"] !== undefined) {
    options.saveOnSignal = resolve(values["save-on-signal"]);
  }
  if (values.restore === undefined) {
    for (const flag of ["paused", "force"] as const) {
      if (values[flag]) throw new UsageError(`--${flag}: add --restore FILE`);
    }
    return options;
  }
  const shaping = args.find((arg) =>
    MACHINE_FLAGS.some((flag) => arg === `--${flag}` || arg.startsWith(`--${flag}=`))
  );
  if (shaping !== undefined) {
    throw new UsageError(
      `${shaping.split("=")[0]}: a restored machine is the one in the state file; drop it`,
    );
  }
  options.restore = {
    stateFile: resolve(values.restore),
    paused: values.paused ?? false,
    force: values.force ?? false,
  };
  return options;
}

/**
 * The machine config recorded in a state file, and the boot image a reboot needs (read
 * only when the VM restarts on reboot: a restore itself loads no kernel). A firmware
 * boot's image is always read: the restored machine maps it as its ROM.
 */
export async function restoredMachine(
  stateFile: string,
  restartOnReboot: boolean,
): Promise<{ config: VmmMachineConfig; boot: BootImage }> {
  const file = await readStateFile(stateFile);
  let config: VmmMachineConfig;
  try {
    config = parseSavedConfig(file.document.config);
  } finally {
    file.close();
  }
  const boot = restartOnReboot || config.boot.kind === "firmware"
    ? await loadBootImage(config.boot)
    : { kernel: new Uint8Array(0), cmdline: "" };
  return { config, boot };
}

/** Saves the current machine on SIGTERM, then stops it through `stop`. */
export class SignalSaver {
  readonly #stateFile: string;
  readonly #config: VmmMachineConfig;
  readonly #kvm: Kvm;
  #saving: Promise<void> | undefined;

  constructor(stateFile: string, config: VmmMachineConfig, kvm: Kvm) {
    this.#stateFile = stateFile;
    this.#config = config;
    this.#kvm = kvm;
  }

  /** Settles when no save is under way (a machine must not close under a save). */
  get idle(): Promise<void> {
    return this.#saving ?? Promise.resolve();
  }

  /** Pauses and saves `machine`, then calls `stop`; on failure it runs on. */
  save(machine: Machine, stop: (source: string) => void): void {
    if (this.#saving) return;
    this.#saving = (async () => {
      const wasPaused = machine.isPaused;
      await machine.pause();
      try {
        const saved = await saveMachine(machine, this.#config, this.#kvm, {
          stateFile: this.#stateFile,
        });
        console.error(
          `denovisor: saved to ${saved.stateFile} and ${saved.memoryFile} ` +
            `(${saved.memoryDataBytes} bytes of guest RAM)`,
        );
        stop(`saved to ${saved.stateFile}`);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        console.error(`denovisor: cannot save to ${this.#stateFile}: ${reason}; the VM goes on`);
        if (!wasPaused) machine.resume();
      }
    })().finally(() => this.#saving = undefined);
  }
}
