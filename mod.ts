/**
 * Denovisor as a library: build and run KVM virtual machines from TypeScript.
 *
 * @example Boot a guest and wait for it to end
 * ```ts
 * import { buildMachine, Kvm } from "./mod.ts";
 *
 * using kvm = Kvm.open();
 * const machine = buildMachine(kvm, {
 *   kernel: await Deno.readFile("guests/build/hello.elf"),
 *   cmdline: "",
 *   memoryBytes: 64 << 20,
 *   cpus: 1,
 *   console: { write: (bytes) => Deno.stdout.writeSync(bytes) },
 * });
 * machine.start();
 * console.log(await machine.ended);
 * await machine.close();
 * ```
 *
 * @module
 */

export { Kvm, KvmUnavailableError } from "./core/kvm.ts";
export { Vm } from "./core/vm.ts";
export { Vcpu } from "./core/vcpu.ts";
export { GuestMemory, GuestMemoryError } from "./core/guest_memory.ts";
export type { GuestAddress, GuestMemoryRegion } from "./core/guest_memory.ts";
export { GuestRam } from "./core/memory.ts";
export { Bus, BusOverlapError } from "./core/bus.ts";
export { decodeExit } from "./core/vcpu_exit.ts";
export type { VcpuExit } from "./core/vcpu_exit.ts";
export { handleExit } from "./core/exit_handler.ts";
export { MachineConfigError } from "./core/machine.ts";
export { Machine } from "./vmm/machine.ts";
export { build, buildMachine, loadBootImage } from "./vmm/builder.ts";
export type { BootImage, BuildContext, MachineConfig } from "./vmm/builder.ts";
export type { VmmMachineConfig } from "./vmm/vmm_config.ts";
export { describeEnd, EXIT_STATUS, exitStatusFor } from "./core/vm_end.ts";
export type { FaultReport, VmEndReason } from "./core/vm_end.ts";
export { configureBoot } from "./core/boot/linux_boot.ts";
export type { BootConfig, BootSetup } from "./core/boot/linux_boot.ts";
export { BootImageError } from "./core/boot/boot_error.ts";
export { SyscallError } from "./ffi/errno.ts";
export type { BusDevice, InterruptTrigger } from "./devices/bus_device.ts";
export { Serial16550 } from "./devices/legacy/serial.ts";
export { I8042 } from "./devices/legacy/i8042.ts";
export { CmosRtc } from "./devices/legacy/rtc.ts";
export { openConsole } from "./devices/console/open_console.ts";
export { parseConsoleSpec } from "./devices/console/console_spec.ts";
export type { ConsoleBackend, ConsoleOutput } from "./devices/console/console.ts";
export { DEMO_GUEST_ELF } from "./guests/embedded/demo_guest.ts";
