/**
 * The device manager: puts every device of a machine where its plan (vmm/device_plan.ts)
 * says and holds them by id. Legacy devices go on the PIO bus; virtio devices get a
 * virtio-mmio window (announced on the kernel command line) or a slot on PCI bus 0, an
 * ioeventfd per queue notification address (served by the event loop, so a guest's kick
 * never exits to user space), irqfds for interrupts, and their own fds (taps) on the event
 * loop. `entries()` walks the devices by id, for stats today and machine state tomorrow.
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";
import type { FirmwarePlatform } from "../devices/firmware/firmware_platform.ts";
import { I8042 } from "../devices/legacy/i8042.ts";
import { CmosRtc } from "../devices/legacy/rtc.ts";
import { Serial16550 } from "../devices/legacy/serial.ts";
import { PciConfigMechanism } from "../devices/pci/config_mechanism.ts";
import { PciBus, type PciIntxSource } from "../devices/pci/pci_bus.ts";
import type { PciFunction } from "../devices/pci/pci_device.ts";
import type { BusDevice } from "../core/bus_device.ts";
import { mmioCmdlineFragment, MmioTransport } from "../devices/virtio/mmio_transport.ts";
import { PciTransport } from "../devices/virtio/pci_transport.ts";
import type { CreateQueue } from "../devices/virtio/transport_state.ts";
import type { VirtioDevice } from "../devices/virtio/virtio_device.ts";
import type { VirtioBalloon } from "../devices/virtio/balloon.ts";
import type { VirtioBlock } from "../devices/virtio/block.ts";
import type { VirtioConsole } from "../devices/virtio/console.ts";
import type { VirtioNet } from "../devices/virtio/net.ts";
import { EventFd } from "../ffi/eventfd.ts";
import { DenovisorError } from "../common/errors.ts";
import type { Bus } from "../core/bus.ts";
import type { EventLoop } from "../core/event_loop.ts";
import type { GuestMemory } from "../core/guest_memory.ts";
import { MMIO_HOLE_START } from "../core/layout.ts";
import { KvmMsiController } from "../core/msi.ts";
import type { Vm } from "../core/vm.ts";
import type { DevicePlan, LegacyDevicePlan } from "./device_plan.ts";
import { closeVirtioDevice, type OpenedVirtioDevice } from "./virtio_devices.ts";
import { NotifyWiring } from "./notify_wiring.ts";

/** A device of the machine, by what it is. Virtio devices come with their transport. */
export type ManagedDevice =
  | { id: string; kind: "pci-host"; device: PciBus; mechanism: PciConfigMechanism }
  | { id: string; kind: "serial"; device: Serial16550 }
  | { id: string; kind: "i8042"; device: I8042 }
  | { id: string; kind: "rtc"; device: CmosRtc }
  | (OpenedVirtioDevice & { id: string; transport: MmioTransport | PciTransport });

/** The device manager was given a plan its devices do not match (a bug, not a user error). */
export class DeviceManagerError extends DenovisorError {
  constructor(message: string) {
    super("internal", message);
  }
}

/** What the device manager needs from the machine. */
export interface DeviceManagerOptions {
  vm: Vm;
  memory: GuestMemory;
  mmio: Bus;
  pio: Bus;
  loop: EventLoop;
  createQueue: CreateQueue;
  plan: DevicePlan;
  /** The opened virtio devices, in plan order; the manager closes them when it is closed. */
  virtio: readonly OpenedVirtioDevice[];
  /** Where the serial port's output goes. */
  console: ConsoleOutput;
  /** The guest asked the i8042 to reset the CPU. */
  onReset: () => void;
  /** Firmware boot: the PCI bus's slot 0 (an i440FX) instead of the generic host bridge. */
  pciHostBridge?: PciFunction;
  /** Firmware boot: wraps the 0xcf8-0xcff ports (to put the reset register at 0xcf9). */
  configPorts?: (mechanism: BusDevice) => BusDevice;
  /** Called by `close()`, for what the builder added beside the planned devices. */
  onClose?: () => void;
  /** Presses the ACPI power button; false when the guest does not listen for it. */
  powerButton?: () => boolean;
  /** Firmware boot: the chipset, AHCI and fw_cfg the builder added (for the machine state). */
  firmware?: FirmwarePlatform;
}

/** Every device of one machine, wired, by id; `close()` undoes it all. */
export class DeviceManager {
  /** Kernel command-line fragments announcing the virtio-mmio devices. */
  readonly cmdline: string[] = [];
  /** Firmware boot: the PC platform beside the planned devices (the builder closes it). */
  readonly firmware: FirmwarePlatform | undefined;
  readonly #vm: Vm;
  readonly #loop: EventLoop;
  readonly #devices = new Map<string, ManagedDevice>();
  readonly #notify: NotifyWiring;
  readonly #irqfds: Array<{ eventFd: EventFd; gsi: number }> = [];
  readonly #watched: number[] = [];
  readonly #toClose: VirtioDevice[] = [];
  readonly #onClose: (() => void) | undefined;
  readonly #powerButton: (() => boolean) | undefined;
  #closed = false;
  #pci!: PciBus;
  #serial!: Serial16550;
  #i8042!: I8042;
  #balloon: VirtioBalloon | undefined;
  #virtioConsole: VirtioConsole | undefined;

  constructor(options: DeviceManagerOptions) {
    const { vm, memory, mmio, loop, createQueue } = options;
    this.#vm = vm;
    this.#loop = loop;
    this.#notify = new NotifyWiring(vm, loop);
    this.#onClose = options.onClose;
    this.#powerButton = options.powerButton;
    this.firmware = options.firmware;
    const legacy = new Map(options.plan.legacy.map((plan) => [plan.kind, plan]));
    const plannedLegacy = (kind: LegacyDevicePlan["kind"]) => {
      const plan = legacy.get(kind);
      if (plan === undefined) throw new DeviceManagerError(`The device plan has no ${kind}`);
      return plan;
    };
    try {
      this.#addPciHost(plannedLegacy("pci-host"), options);
      for (const opened of options.virtio) {
        this.#addVirtio(opened, { memory, mmio, createQueue });
      }
      this.#addLegacy(options, plannedLegacy);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The device with `id`, if there is one. */
  get(id: string): ManagedDevice | undefined {
    return this.#devices.get(id);
  }

  /** Every device by id, in the order they were added. */
  entries(): IterableIterator<[string, ManagedDevice]> {
    return this.#devices.entries();
  }

  /** The 16550 on COM1. */
  get serial(): Serial16550 {
    return this.#serial;
  }

  /** The keyboard controller, for host-side key presses (Ctrl-Alt-Del). */
  get i8042(): I8042 {
    return this.#i8042;
  }

  /** The virtio-blk device with `id`. */
  disk(id: string): VirtioBlock | undefined {
    const entry = this.#devices.get(id);
    return entry?.kind === "disk" ? entry.device : undefined;
  }

  /** The virtio-net device with `id`. */
  nic(id: string): VirtioNet | undefined {
    const entry = this.#devices.get(id);
    return entry?.kind === "nic" ? entry.device : undefined;
  }

  /** The balloon, when the machine has one. */
  get balloon(): VirtioBalloon | undefined {
    return this.#balloon;
  }

  /** The virtio console, when the machine has one (it takes the console input). */
  get virtioConsole(): VirtioConsole | undefined {
    return this.#virtioConsole;
  }

  /** The PCI interrupt pins in use, for the MP table. */
  pciIntxSources(): PciIntxSource[] {
    return this.#pci.intxSources();
  }

  /** Releases eventfds, irqfds and the devices' host resources; idempotent. */
  close(): void {
    this.#notify.close();
    for (const fd of this.#watched.splice(0)) this.#loop.remove(fd);
    for (const { eventFd, gsi } of this.#irqfds.splice(0)) {
      this.#vm.unregisterIrqfd(eventFd.fd, gsi);
      eventFd.close();
    }
    for (const entry of this.#devices.values()) if (entry.kind === "rtc") entry.device.close();
    // Closed devices stay listed (stats read their final counters) but close only once.
    for (const device of this.#toClose.splice(0)) closeVirtioDevice(device);
    if (!this.#closed) this.#onClose?.();
    this.#closed = true;
  }

  /**
   * Presses the ACPI power button (machines with the firmware platform); false when there
   * is none or the guest has not enabled its event, so the caller falls back to Ctrl-Alt-Del.
   */
  pressPowerButton(): boolean {
    return this.#powerButton?.() ?? false;
  }

  /** PCI bus 0, for devices the builder adds beside the plan (the firmware platform). */
  get pciBus(): PciBus {
    return this.#pci;
  }

  #add(entry: ManagedDevice): void {
    if (this.#devices.has(entry.id)) {
      throw new DeviceManagerError(`Device id '${entry.id}' is used twice in the plan`);
    }
    this.#devices.set(entry.id, entry);
    // The devices the machine reaches often (console input, Ctrl-Alt-Del, the balloon API).
    if (entry.kind === "serial") this.#serial = entry.device;
    if (entry.kind === "i8042") this.#i8042 = entry.device;
    if (entry.kind === "balloon") this.#balloon = entry.device;
    if (entry.kind === "console") this.#virtioConsole = entry.device;
  }

  #addPciHost(plan: LegacyDevicePlan, options: DeviceManagerOptions): void {
    const { vm, mmio, pio } = options;
    const pci = this.#pci = new PciBus({
      mmio,
      pio,
      msi: new KvmMsiController(vm),
      setIrqLevel: (gsi, high) => vm.setIrqLine(gsi, high),
      hostBridge: options.pciHostBridge,
    });
    const mechanism = new PciConfigMechanism(pci);
    const [ports] = plan.ports;
    pio.insert(
      ports.base,
      ports.count,
      "pci-config",
      options.configPorts?.(mechanism) ?? mechanism,
    );
    this.#add({ id: plan.id, kind: "pci-host", device: pci, mechanism });
  }

  #addVirtio(
    opened: OpenedVirtioDevice,
    context: { memory: GuestMemory; mmio: Bus; createQueue: CreateQueue },
  ): void {
    const plan = opened.plan;
    const device: VirtioDevice = opened.device;
    this.#toClose.push(device);
    let transport: MmioTransport | PciTransport;
    if (plan.transport.kind === "mmio") {
      const { base, size, irq } = plan.transport;
      const line = new EventFd();
      this.#vm.registerIrqfd(line.fd, irq);
      this.#irqfds.push({ eventFd: line, gsi: irq });
      const mmio = transport = new MmioTransport(device, {
        memory: context.memory,
        createQueue: context.createQueue,
        base,
        irq: { trigger: () => line.signal() },
      });
      context.mmio.insert(base, size, plan.id, mmio);
      this.cmdline.push(mmioCmdlineFragment(base, irq));
      this.#notify.watch(mmio, mmio.notifyRegions(), (q) => mmio.notify(q));
    } else {
      const pci = transport = new PciTransport(device, {
        memory: context.memory,
        createQueue: context.createQueue,
      });
      const slot = this.#pci.add(pci);
      if (slot !== plan.transport.slot) {
        throw new DeviceManagerError(
          `${plan.id} went to PCI slot ${slot}, not the planned ${plan.transport.slot}`,
        );
      }
      this.#notify.watch(pci, pci.notifyRegions(), (q) => pci.notify(q));
      pci.onNotifyRegionsChanged((regions) => {
        this.#notify.unwatch(pci);
        this.#notify.watch(pci, regions, (q) => pci.notify(q));
      });
    }
    this.#add({ ...opened, id: plan.id, transport });
    for (const source of device.eventSources?.() ?? []) {
      this.#loop.add(source.fd, () => source.onReadable());
      this.#watched.push(source.fd);
    }
  }

  #addLegacy(
    options: DeviceManagerOptions,
    planned: (kind: LegacyDevicePlan["kind"]) => LegacyDevicePlan,
  ): void {
    const { vm, pio, memory } = options;
    const serialPlan = planned("serial");
    const [com1Irq] = serialPlan.irqs;
    const serial = new Serial16550({
      interrupt: { trigger: () => vm.pulseIrqLine(com1Irq) },
      output: options.console,
    });
    const [com1] = serialPlan.ports;
    pio.insert(com1.base, com1.count, "serial", serial);
    this.#add({ id: serialPlan.id, kind: "serial", device: serial });

    const i8042Plan = planned("i8042");
    const [keyboardIrq, auxIrq] = i8042Plan.irqs;
    const i8042 = new I8042({
      onReset: options.onReset,
      keyboardInterrupt: { trigger: () => vm.pulseIrqLine(keyboardIrq) },
      auxInterrupt: { trigger: () => vm.pulseIrqLine(auxIrq) },
    });
    const [data, command] = i8042Plan.ports;
    pio.insert(data.base, data.count, "i8042-data", i8042.dataPort);
    pio.insert(command.base, command.count, "i8042-command", i8042.commandPort);
    this.#add({ id: i8042Plan.id, kind: "i8042", device: i8042 });

    const rtcPlan = planned("rtc");
    const ramBelowHole = Math.min(memory.size, MMIO_HOLE_START);
    const [rtcIrq] = rtcPlan.irqs;
    const rtc = new CmosRtc({
      memoryBelow4G: ramBelowHole,
      memoryAbove4G: memory.size - ramBelowHole,
      setIrqLevel: (high) => vm.setIrqLine(rtcIrq, high),
    });
    const [cmos] = rtcPlan.ports;
    pio.insert(cmos.base, cmos.count, "rtc", rtc);
    this.#add({ id: rtcPlan.id, kind: "rtc", device: rtc });
  }
}
