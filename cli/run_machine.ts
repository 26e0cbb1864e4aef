/**
 * Builds one machine with its virtio devices: the part of a VM's start that `denovisor
 * run` and `denovisor vmm` share (and repeat for each boot of a restart loop).
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";
import type { Kvm } from "../core/kvm.ts";
import { Machine, type MachineConfig } from "../core/machine.ts";
import { buildRunDevices, type RunDeviceOptions, type RunDevices } from "./run_devices.ts";

/** A validated VM description, without its console. */
export interface MachineSetup extends Omit<MachineConfig, "console" | "virtio"> {
  devices: RunDeviceOptions;
}

/** A built (not yet started) machine, its devices and where console input goes. */
export interface BuiltMachine {
  machine: Machine;
  devices: RunDevices;
  /** Hands typed bytes to the virtio console when there is one, else to the UART. */
  input: (bytes: Uint8Array) => void;
}

/**
 * Opens the devices and builds the machine around them; if the build fails the devices
 * are closed again. The machine owns the devices afterwards (its `close()` closes them).
 */
export function buildMachineWithDevices(
  kvm: Kvm,
  setup: MachineSetup,
  console: ConsoleOutput,
): BuiltMachine {
  const devices = buildRunDevices(setup.devices, { memoryBytes: setup.memoryBytes, console });
  let machine: Machine;
  try {
    machine = Machine.build(kvm, { ...setup, console, virtio: devices.attachments });
  } catch (error) {
    devices.attachments.forEach(({ device }) => device.close?.());
    throw error;
  }
  const target = devices.virtioConsole ?? machine.serial;
  return { machine, devices, input: (bytes) => target.receive(bytes) };
}
