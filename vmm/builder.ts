/**
 * The VMM builder: the machine config (vmm/vmm_config.ts) in, a built machine out. The
 * daemon's VMM (`denovisor vmm`) and `denovisor run` both come here, with the same config
 * shape.
 *
 * A build has two halves, kept apart so that a restore can share the first:
 *   1. construction: plan the devices (ids, addresses, interrupts), open their host
 *      resources (images, taps), create the VM and its RAM, and put every device on the
 *      machine (`constructMachine`);
 *   2. boot-time set-up: load the kernel, initrd and command line into guest RAM, create
 *      the vCPUs with their CPUID and MSRs and point vCPU 0 at the entry (`bootSetUp`).
 * `restore(config, source, context)` runs the same construction with guest RAM mapped from
 * the memory file rather than allocated, then creates the vCPUs and loads the saved state
 * into them and into the devices (`DeviceManager.entries()`, by id) instead of booting
 * (vmm/snapshot/restore_machine.ts): `constructMachine` takes that second half as its
 * `setUp` argument.
 *
 * @module
 */

import { BIOS_AREA_START } from "../core/bios_area.ts";
import { BIOS_SHADOW_SIZE, BiosShadow } from "../core/bios_shadow.ts";
import { guestRamRegions } from "../core/boot/e820.ts";
import { checkFirmwareImage, mapFirmware } from "../core/boot/firmware_rom.ts";
import { configureBoot } from "../core/boot/linux_boot.ts";
import { Bus } from "../core/bus.ts";
import { EventLoop } from "../core/event_loop.ts";
import type { Kvm } from "../core/kvm.ts";
import { checkVcpuCount, initVm, VmEndSignal } from "../core/machine.ts";
import { GuestRam } from "../core/memory.ts";
import type { Vcpu } from "../core/vcpu.ts";
import type { Vm } from "../core/vm.ts";
import { configureBootVcpu, configureVcpu } from "../core/vcpu_setup.ts";
import type { ConsoleOutput } from "../devices/console/console.ts";
import { createSplitQueue as createQueue } from "../devices/virtio/queue.ts";
import { DirectBootAcpi } from "../devices/firmware/direct_boot_acpi.ts";
import { FirmwarePlatform } from "../devices/firmware/firmware_platform.ts";
import type { HostMapping } from "../ffi/mman.ts";
import type { Disk } from "../storage/disk.ts";
import { RawDisk } from "../storage/raw_disk.ts";
import { openImage } from "../storage/image.ts";
import { DEMO_GUEST_ELF } from "../guests/embedded/demo_guest.ts";
import { DeviceManager } from "./device_manager.ts";
import { planDevices } from "./device_plan.ts";
import { readInputFile } from "./input_files.ts";
import { Machine } from "./machine.ts";
import {
  type HostFacts,
  hostFacts,
  type LoadedState,
  loadMachineState,
  type RestoreOptions,
  restoreSetUp,
} from "./snapshot/restore_machine.ts";
import { closeVirtioDevices, openVirtioDevices } from "./virtio_devices.ts";
import type { VmmBootConfig, VmmMachineConfig } from "./vmm_config.ts";

/** The boot files of a config, read: what the guest boots. */
export interface BootImage {
  kernel: Uint8Array;
  /** Names the kernel in errors (its path, or "the embedded demo guest"). */
  kernelPath?: string;
  initrd?: Uint8Array;
  cmdline: string;
  /** A firmware boot's BIOS image (`kernel` is then empty): vCPUs start at its reset vector. */
  firmware?: { image: Uint8Array; path: string; order?: ("disk" | "cdrom")[] };
}

/** What a build needs besides the config. */
export interface BuildContext {
  kvm: Kvm;
  /** Where the serial port's (and the virtio console's) output goes. */
  console: ConsoleOutput;
  /**
   * The config's boot files as `loadBootImage(config.boot)` read them: read once per
   * process, before KVM is opened, and reused by every reboot.
   */
  boot: BootImage;
}

/** Reads the kernel and initrd `boot` names (the embedded demo guest for `kind: "demo"`). */
export async function loadBootImage(boot: VmmBootConfig): Promise<BootImage> {
  if (boot.kind === "firmware") {
    const image = await readInputFile(boot.firmware, "firmware");
    checkFirmwareImage(image, boot.firmware);
    return {
      kernel: new Uint8Array(0),
      kernelPath: boot.firmware,
      cmdline: "",
      firmware: { image, path: boot.firmware, order: boot.order },
    };
  }
  const linux = boot.kind === "linux" ? boot : undefined;
  return {
    kernel: linux ? await readInputFile(linux.kernel, "kernel") : DEMO_GUEST_ELF,
    kernelPath: linux?.kernel ?? "the embedded demo guest",
    initrd: boot.initrd === undefined ? undefined : await readInputFile(boot.initrd, "initrd"),
    cmdline: boot.cmdline ?? "",
  };
}

/**
 * Builds a machine for `config`, ready to `start()`. The machine owns its devices (its
 * `close()` closes them); on failure everything opened or created so far is released.
 */
export function build(config: VmmMachineConfig, context: BuildContext): Machine {
  return constructMachine(config, context, (parts) => bootSetUp(config, context, parts));
}

/** Where a restore takes the machine's state from. */
export interface RestoreSource {
  /** The state file (its memory file, if any, is beside it). */
  stateFile: string;
  /** Restore even if a disk is not the image it was at the save. */
  force?: boolean;
}

/**
 * Builds a machine for `config` in the state saved in `source` instead of booting it:
 * ready to `start()` (its virtio devices are kicked when its vCPUs first run). The state
 * is checked whole against `config` and this host before anything is built; a failure
 * leaves nothing behind.
 */
export async function restore(
  config: VmmMachineConfig,
  source: RestoreSource,
  context: BuildContext,
): Promise<Machine> {
  const host = hostFacts(context.kvm);
  const loaded = await loadMachineState(config, source.stateFile, host);
  return restoreLoaded(config, loaded, host, context, { force: source.force });
}

/**
 * The second half of `restore`, for a state already checked and its RAM prepared (a
 * migration's, received over a link). Takes over `loaded.mappings`, even on failure.
 */
export function restoreLoaded(
  config: VmmMachineConfig,
  loaded: LoadedState,
  host: HostFacts,
  context: BuildContext,
  options: RestoreOptions = {},
): Machine {
  try {
    const machine = constructMachine(
      config,
      context,
      (parts) => restoreSetUp(config, host, parts, loaded, options),
      loaded.mappings,
    );
    machine.markRestored();
    return machine;
  } catch (error) {
    // Idempotent: mappings guest RAM took over are unmapped already.
    loaded.mappings.forEach((mapping) => mapping.unmap());
    throw error;
  }
}

/** A machine with no virtio devices, from an in-memory kernel (library users, tests). */
export interface MachineConfig {
  kernel: Uint8Array;
  /** How to name the kernel in errors (its path). */
  kernelPath?: string;
  initrd?: Uint8Array;
  cmdline: string;
  memoryBytes: number;
  cpus: number;
  /** Where the serial port's output goes (the caller feeds input to `machine.serial`). */
  console: ConsoleOutput;
}

/** `build()` for a kernel already in memory: the same machine, legacy devices only. */
export function buildMachine(kvm: Kvm, config: MachineConfig): Machine {
  const machine: VmmMachineConfig = {
    vcpus: config.cpus,
    memoryBytes: config.memoryBytes,
    boot: { kind: "linux", kernel: config.kernelPath ?? "", cmdline: config.cmdline },
    disks: [],
    nics: [],
    balloon: false,
  };
  const boot: BootImage = {
    kernel: config.kernel,
    kernelPath: config.kernelPath,
    initrd: config.initrd,
    cmdline: config.cmdline,
  };
  return build(machine, { kvm, console: config.console, boot });
}

/** The built pieces that the second half of a build (boot, or a restore) works on. */
interface ConstructedParts {
  vm: Vm;
  ram: GuestRam;
  devices: DeviceManager;
  /** Empty; the second half creates the vCPUs into it (so that a failure closes them). */
  vcpus: Vcpu[];
  /** A direct boot's ACPI hardware, whose tables a boot (not a restore) writes. */
  acpi?: DirectBootAcpi;
}

/**
 * Construction: devices opened, VM, RAM (`ramMappings` when given: a restore's) and every
 * device in place; then `setUp` (boot or restore) creates and prepares the vCPUs.
 */
function constructMachine(
  config: VmmMachineConfig,
  context: BuildContext,
  setUp: (parts: ConstructedParts) => void,
  ramMappings?: HostMapping[],
): Machine {
  const plan = planDevices(config);
  // Host resources first (a locked disk, a missing tap): nothing of KVM exists yet.
  const virtio = openVirtioDevices(plan.virtio, {
    memoryBytes: config.memoryBytes,
    console: context.console,
  });
  const cdroms: Disk[] = [];
  const sataDisks: Disk[] = [];
  try {
    for (const path of config.cdroms ?? []) cdroms.push(RawDisk.open(path, { readOnly: true }));
    for (const disk of config.sataDisks ?? []) {
      sataDisks.push(openImage(disk.path, { readOnly: disk.readOnly, format: disk.format }));
    }
    const { kvm } = context;
    checkVcpuCount(kvm, config.vcpus);
    const regions = guestRamRegions(config.memoryBytes);
    const vm = kvm.createVm();
    const pio = new Bus();
    const mmio = new Bus();
    const loop = new EventLoop();
    const end = new VmEndSignal();
    let ram: GuestRam | undefined;
    let devices: DeviceManager | undefined;
    let firmware: FirmwarePlatform | undefined;
    let acpi: DirectBootAcpi | undefined;
    let rom: HostMapping | undefined;
    const vcpus: Vcpu[] = [];
    try {
      initVm(vm);
      ram = GuestRam.allocate(vm, regions, ramMappings);
      const bios = context.boot.firmware;
      if (bios) {
        // The ROM below 4 GiB and its tail in RAM at 0xE0000; PAM then splits that RAM. A
        // restore's RAM holds the saved shadow copy, and its PAM is the state's.
        rom = mapFirmware(vm, ram.memory, bios.image, bios.path, {
          copyToRam: ramMappings === undefined,
        });
        const shadow = new BiosShadow(vm, {
          slot: 0,
          ram: ram.ranges[0],
          memory: ram.memory,
          rom: { address: rom.address, size: rom.size },
        });
        mmio.insert(BIOS_AREA_START, BIOS_SHADOW_SIZE, "bios-shadow", shadow);
        firmware = new FirmwarePlatform({
          biosArea: shadow,
          memory: ram.memory,
          cpus: config.vcpus,
          ram: regions,
          setIrqLine: (gsi, high) => vm.setIrqLine(gsi, high),
          onReset: () => end.end({ kind: "reset", source: "reset register" }),
          onPowerOff: () => end.end({ kind: "poweroff", source: "ACPI S5" }),
          cdroms: cdroms.splice(0), // the platform closes them from now on
          disks: sataDisks.splice(0),
        });
      } else {
        acpi = new DirectBootAcpi({
          cpus: config.vcpus,
          setIrqLine: (gsi, high) => vm.setIrqLine(gsi, high),
          onReset: () => end.end({ kind: "reset", source: "reset register" }),
          onPowerOff: () => end.end({ kind: "poweroff", source: "ACPI S5" }),
        });
      }
      const platform = firmware;
      const chipset = platform ?? acpi;
      devices = new DeviceManager({
        vm,
        memory: ram.memory,
        mmio,
        pio,
        loop,
        createQueue,
        plan,
        virtio,
        console: context.console,
        onReset: () => end.end({ kind: "reset", source: "i8042" }),
        pciHostBridge: platform?.hostBridge,
        configPorts: chipset && ((mechanism) => chipset.configPorts(mechanism)),
        // After the vCPUs stopped and before the VM closes: the CD-ROMs, then the ROM.
        onClose: () => {
          platform?.close();
          rom?.unmap();
        },
        powerButton: chipset && (() => chipset.pressPowerButton()),
        firmware: platform,
      });
      if (acpi) acpi.attach(pio);
      if (platform && bios) {
        const diskSlots = plan.virtio.flatMap((d) =>
          d.kind === "disk" && d.transport.kind === "pci" ? [d.transport.slot] : []
        );
        platform.install({ pio, pci: devices.pciBus, diskSlots, order: bios.order });
      }
      setUp({ vm, ram, devices, vcpus, acpi });
      return new Machine({ vm, ram, vcpus, pio, mmio, loop, devices, end });
    } catch (error) {
      // The same order as Machine.close(): the VM lets go of guest RAM before it is unmapped.
      if (devices) devices.close();
      else firmware?.close();
      void loop.stop();
      vcpus.forEach((vcpu) => vcpu.close());
      vm.close();
      ram?.close();
      rom?.unmap(); // idempotent: devices.close() may have unmapped it
      throw error;
    }
  } catch (error) {
    closeVirtioDevices(virtio);
    [...cdroms, ...sataDisks].forEach((disk) => disk.close());
    throw error;
  }
}

/**
 * Boot-time set-up: the kernel, initrd, command line (with the virtio-mmio devices
 * announced on it), ACPI tables and MP table in guest RAM, then the vCPUs, vCPU 0 at the
 * entry point.
 */
function bootSetUp(
  config: VmmMachineConfig,
  context: BuildContext,
  parts: ConstructedParts,
): void {
  const { boot, kvm } = context;
  const { vm, ram, devices, vcpus, acpi } = parts;
  const supportedCpuid = kvm.supportedCpuid();
  if (boot.firmware) {
    // The firmware boots the machine: every vCPU stays in KVM's reset state, vCPU 0 at
    // the reset vector (0xFFFFFFF0, the ROM mapped below 4 GiB), the others waiting for
    // the firmware's INIT and SIPI.
    for (let id = 0; id < config.vcpus; id++) {
      vcpus.push(vm.createVcpu(id));
      configureVcpu(vcpus[id], supportedCpuid, config.vcpus);
    }
    return;
  }
  const entry = configureBoot(ram.memory, {
    kernel: boot.kernel,
    kernelPath: boot.kernelPath,
    initrd: boot.initrd,
    cmdline: [boot.cmdline, ...devices.cmdline].filter((part) => part !== "").join(" "),
    cpus: config.vcpus,
    mpTable: { pciIntx: devices.pciIntxSources() },
    acpiRsdp: acpi?.writeTables(ram.memory),
  });
  for (let id = 0; id < config.vcpus; id++) {
    vcpus.push(vm.createVcpu(id));
    configureVcpu(vcpus[id], supportedCpuid, config.vcpus);
  }
  configureBootVcpu(vcpus[0], entry);
}
