/**
 * The machine builder: turns a validated `MachineConfig` into a running VM (memory,
 * interrupt controllers, boot image, vCPUs, legacy devices) and tears it down again.
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";
import { I8042 } from "../devices/legacy/i8042.ts";
import { CmosRtc, RTC_PORT_COUNT } from "../devices/legacy/rtc.ts";
import { Serial16550, SERIAL_PORT_COUNT } from "../devices/legacy/serial.ts";
import { MPTABLE_MAX_CPUS } from "./boot/mptable.ts";
import { guestRamRegions } from "./boot/e820.ts";
import { configureBoot } from "./boot/linux_boot.ts";
import { Bus } from "./bus.ts";
import type { Space } from "./exit_handler.ts";
import type { Kvm } from "./kvm.ts";
import {
  COM1_IRQ,
  COM1_PORT,
  I8042_AUX_IRQ,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_KEYBOARD_IRQ,
  KVM_IDENTITY_MAP_ADDRESS,
  KVM_TSS_ADDRESS,
  MMIO_HOLE_START,
  RTC_PORT,
} from "./layout.ts";
import { GuestRam } from "./memory.ts";
import type { Vcpu } from "./vcpu.ts";
import { configureBootVcpu, configureVcpu } from "./vcpu_setup.ts";
import { VcpuThread } from "./vcpu_thread.ts";
import type { VmEndReason } from "./vm_end.ts";
import { Vm } from "./vm.ts";
import { installKickSignalHandler } from "./kick_signal.ts";
import { EventLoop } from "./event_loop.ts";
import { type VirtioAttachment, VirtioWiring } from "./virtio_wiring.ts";
import { createSplitQueue as createQueue } from "../devices/virtio/queue.ts";

/** Everything needed to build a VM, already validated by the caller's config parser. */
export interface MachineConfig {
  kernel: Uint8Array;
  /** How to name the kernel in errors (its path). */
  kernelPath?: string;
  initrd?: Uint8Array;
  cmdline: string;
  memoryBytes: number;
  cpus: number;
  /** Where the serial port's output goes (the caller feeds input to `serial`). */
  console: ConsoleOutput;
  /** Virtio devices; the machine closes them when it is closed. */
  virtio?: VirtioAttachment[];
}

/** The pieces `build()` assembles. */
interface MachineParts {
  vm: Vm;
  ram: GuestRam;
  vcpus: Vcpu[];
  pio: Bus;
  mmio: Bus;
  loop: EventLoop;
  virtio: VirtioWiring;
}

/** A configuration the host cannot run (too many vCPUs, too little memory...). */
export class MachineConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineConfigError";
  }
}

/** A built VM. `start()` runs it; `ended` settles with the reason it stopped. */
export class Machine {
  readonly vm: Vm;
  readonly ram: GuestRam;
  readonly vcpus: readonly Vcpu[];
  readonly pio: Bus;
  readonly mmio: Bus;
  readonly serial: Serial16550;
  /** The keyboard controller, for host-side key presses (Ctrl-Alt-Del). */
  readonly i8042: I8042;
  readonly #loop: EventLoop;
  readonly #virtio: VirtioWiring;
  #threads: VcpuThread[] = [];
  #end!: (reason: VmEndReason) => void;
  readonly ended: Promise<VmEndReason>;
  readonly #unhandled = new Set<string>();
  #closed = false;

  private constructor(parts: MachineParts, console: ConsoleOutput) {
    const { vm, ram } = parts;
    this.vm = vm;
    this.ram = ram;
    this.vcpus = parts.vcpus;
    this.pio = parts.pio;
    this.mmio = parts.mmio;
    this.#loop = parts.loop;
    this.#virtio = parts.virtio;
    this.ended = new Promise((resolve) => this.#end = resolve);
    this.serial = new Serial16550({
      interrupt: { trigger: () => vm.pulseIrqLine(COM1_IRQ) },
      output: console,
    });
    const ramBelowHole = Math.min(ram.memory.size, MMIO_HOLE_START);
    this.pio.insert(COM1_PORT, SERIAL_PORT_COUNT, "serial", this.serial);
    const i8042 = this.i8042 = new I8042({
      onReset: () => this.#end({ kind: "reset", source: "i8042" }),
      keyboardInterrupt: { trigger: () => vm.pulseIrqLine(I8042_KEYBOARD_IRQ) },
      auxInterrupt: { trigger: () => vm.pulseIrqLine(I8042_AUX_IRQ) },
    });
    // Two one-port views, so that port 0x61 (the PIT's speaker port, in KVM) stays free.
    this.pio.insert(I8042_DATA_PORT, 1, "i8042-data", i8042.dataPort);
    this.pio.insert(I8042_COMMAND_PORT, 1, "i8042-command", i8042.commandPort);
    this.pio.insert(
      RTC_PORT,
      RTC_PORT_COUNT,
      "rtc",
      new CmosRtc({
        memoryBelow4G: ramBelowHole,
        memoryAbove4G: ram.memory.size - ramBelowHole,
      }),
    );
  }

  /** Builds a VM for `config`; on failure everything created so far is released. */
  static build(kvm: Kvm, config: MachineConfig): Machine {
    const maxCpus = Math.min(kvm.maxVcpus(), MPTABLE_MAX_CPUS);
    if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > maxCpus) {
      throw new MachineConfigError(
        `Cannot give the VM ${config.cpus} vCPUs: this host allows 1 to ${maxCpus}`,
      );
    }
    const regions = guestRamRegions(config.memoryBytes);
    const vm = kvm.createVm();
    const pio = new Bus();
    const mmio = new Bus();
    const loop = new EventLoop();
    let ram: GuestRam | undefined;
    let virtio: VirtioWiring | undefined;
    const vcpus: Vcpu[] = [];
    try {
      vm.setTssAddress(KVM_TSS_ADDRESS);
      vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
      vm.createIrqchip();
      vm.setGsiRouting(Vm.defaultRoutes());
      vm.createPit();
      ram = GuestRam.allocate(vm, regions);
      virtio = new VirtioWiring({
        vm,
        memory: ram.memory,
        mmio,
        pio,
        loop,
        createQueue,
        devices: config.virtio ?? [],
      });
      const entry = configureBoot(ram.memory, {
        kernel: config.kernel,
        kernelPath: config.kernelPath,
        initrd: config.initrd,
        cmdline: [config.cmdline, ...virtio.cmdline].filter((part) => part !== "").join(" "),
        cpus: config.cpus,
        mpTable: { pciIntx: virtio.pciIntxSources() },
      });
      const supportedCpuid = kvm.supportedCpuid();
      for (let id = 0; id < config.cpus; id++) {
        vcpus.push(vm.createVcpu(id));
        configureVcpu(vcpus[id], supportedCpuid, config.cpus);
      }
      configureBootVcpu(vcpus[0], entry);
      return new Machine({ vm, ram, vcpus, pio, mmio, loop, virtio }, config.console);
    } catch (error) {
      // The same order as close(): the VM lets go of guest RAM before it is unmapped.
      virtio?.close();
      void loop.stop();
      vcpus.forEach((vcpu) => vcpu.close());
      vm.close();
      ram?.close();
      throw error;
    }
  }

  /** Starts every vCPU and the device event loop. */
  start(): void {
    installKickSignalHandler();
    void this.#loop.start();
    const serve = (space: Space, isWrite: boolean, address: number, data: Uint8Array) =>
      this.#access(space, isWrite, address, data);
    this.#threads = this.vcpus.map((vcpu) => {
      const thread = new VcpuThread(vcpu, this.ram.ranges, serve);
      thread.done.then((reason) => reason && this.#end(reason));
      return thread;
    });
  }

  /** Ends the VM from the host side (a user's stop, a console escape). */
  stop(source: string): void {
    this.#end({ kind: "stopped", source });
  }

  /** Pauses every vCPU; resolves once none runs guest code. */
  async pause(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.pause()));
  }

  resume(): void {
    this.#threads.forEach((t) => t.resume());
  }

  /** vCPU run state and exit counts, per vCPU. */
  get vcpuStats(): Array<{ id: number; state: string; exits: number; tid: number }> {
    return this.#threads.map((t) => ({
      id: t.vcpu.id,
      state: t.state,
      exits: t.exits,
      tid: t.tid,
    }));
  }

  /** Stops all vCPUs and releases the VM and its memory; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#threads.map((t) => t.stop()));
    this.#virtio.close();
    await this.#loop.stop();
    this.vcpus.forEach((v) => v.close());
    this.vm.close();
    this.ram.close();
  }

  #access(space: Space, isWrite: boolean, address: number, data: Uint8Array): void {
    const bus = space === "pio" ? this.pio : this.mmio;
    const served = isWrite ? bus.write(address, data) : bus.read(address, data);
    if (served) return;
    // Unclaimed reads float high, as on a real bus; say so once per address.
    const key = `${space}:${address}`;
    if (!this.#unhandled.has(key)) {
      this.#unhandled.add(key);
      if (Deno.env.get("DENOVISOR_DEBUG")) {
        console.error(
          `denovisor: unhandled ${space} ${isWrite ? "write" : "read"} at 0x${
            address.toString(16)
          }`,
        );
      }
    }
  }
}
