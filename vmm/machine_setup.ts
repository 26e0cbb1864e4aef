/**
 * Turns a validated `VmmConfig` into the `MachineSetup` that `denovisor run` also builds
 * from its flags, so both boot a VM the same way.
 *
 * @module
 */

import type { DiskSpec } from "../cli/device_specs.ts";
import { readInputFile } from "../cli/files.ts";
import type { MachineSetup } from "../cli/run_machine.ts";
import { DEMO_GUEST_ELF } from "../guests/embedded/demo_guest.ts";
import type { VmmConfig } from "./vmm_config.ts";

/** Reads the kernel and initrd and maps the devices. */
export async function machineSetupFor(config: VmmConfig): Promise<MachineSetup> {
  const boot = config.boot;
  const linux = boot.kind === "linux" ? boot : undefined;
  return {
    kernel: linux ? await readInputFile(linux.kernel, "kernel") : DEMO_GUEST_ELF,
    kernelPath: linux?.kernel ?? "the embedded demo guest",
    initrd: linux?.initrd === undefined ? undefined : await readInputFile(linux.initrd, "initrd"),
    cmdline: linux?.cmdline ?? "",
    memoryBytes: config.memoryBytes,
    cpus: config.vcpus,
    devices: {
      disks: config.disks.map((disk) => {
        // The daemon probed the format when it resolved the domain; opening with it (not
        // probing again) keeps a guest from turning a raw disk into a qcow2 header.
        const spec: DiskSpec = {
          path: disk.path,
          format: disk.format,
          readOnly: disk.readOnly,
          transport: disk.transport,
          serial: disk.serial,
          rateLimit: disk.rateLimit,
        };
        return spec;
      }),
      nics: config.nics.map((nic) => ({ ...nic })),
      rng: config.rng ? { transport: "pci", rateLimit: config.rng.rateLimit } : undefined,
      balloon: config.balloon ? { transport: "pci" } : undefined,
      virtioConsole: config.virtioConsole ? { transport: "pci" } : undefined,
    },
  };
}
