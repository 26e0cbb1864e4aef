/**
 * Puts virtio devices on the machine: a virtio-mmio window (announced on the kernel
 * command line) or a slot on PCI bus 0, an ioeventfd per queue notification address
 * (served by the event loop, so a guest's kick never exits to user space), irqfds for
 * interrupts, and the devices' own fds (taps) on the event loop.
 *
 * @module
 */

import { PciBus, type PciIntxSource } from "../devices/pci/pci_bus.ts";
import { PciConfigMechanism } from "../devices/pci/config_mechanism.ts";
import {
  mmioCmdlineFragment,
  MmioTransport,
  VIRTIO_MMIO_SIZE,
} from "../devices/virtio/mmio_transport.ts";
import { PciTransport } from "../devices/virtio/pci_transport.ts";
import type { CreateQueue, NotifyRegion } from "../devices/virtio/transport_state.ts";
import type { VirtioDevice } from "../devices/virtio/virtio_device.ts";
import { EventFd } from "../ffi/eventfd.ts";
import type { Bus } from "./bus.ts";
import type { EventLoop } from "./event_loop.ts";
import type { GuestMemory } from "./guest_memory.ts";
import {
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_PORT_COUNT,
  VIRTIO_MMIO_IRQS,
  VIRTIO_MMIO_START,
  VIRTIO_MMIO_WINDOW,
} from "./layout.ts";
import { KvmMsiController } from "./msi.ts";
import type { Vm } from "./vm.ts";

/** A device and the transport it goes on. */
export interface VirtioAttachment {
  device: VirtioDevice;
  transport: "pci" | "mmio";
}

/** Too many devices for the transport's address or interrupt space. */
export class VirtioWiringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VirtioWiringError";
  }
}

interface Notifier {
  region: NotifyRegion;
  eventFd: EventFd;
}

/** Every virtio device of one machine, wired; `close()` undoes it all. */
export class VirtioWiring {
  /** Kernel command-line fragments announcing the virtio-mmio devices. */
  readonly cmdline: string[] = [];
  readonly #vm: Vm;
  readonly #loop: EventLoop;
  readonly #pci: PciBus;
  readonly #devices: VirtioDevice[] = [];
  readonly #notifiers = new Map<object, Notifier[]>();
  readonly #irqfds: Array<{ eventFd: EventFd; gsi: number }> = [];
  readonly #watched: number[] = [];

  constructor(options: {
    vm: Vm;
    memory: GuestMemory;
    mmio: Bus;
    pio: Bus;
    loop: EventLoop;
    createQueue: CreateQueue;
    devices: readonly VirtioAttachment[];
  }) {
    const { vm, memory, mmio, pio, loop, createQueue } = options;
    this.#vm = vm;
    this.#loop = loop;
    this.#pci = new PciBus({
      mmio,
      pio,
      msi: new KvmMsiController(vm),
      setIrqLevel: (gsi, high) => vm.setIrqLine(gsi, high),
    });
    pio.insert(
      PCI_CONFIG_ADDRESS_PORT,
      PCI_CONFIG_PORT_COUNT,
      "pci-config",
      new PciConfigMechanism(this.#pci),
    );
    let mmioIndex = 0;
    try {
      for (const { device, transport } of options.devices) {
        this.#devices.push(device);
        if (transport === "mmio") {
          this.#attachMmio(device, mmioIndex++, { memory, mmio, createQueue });
        } else {
          const pci = new PciTransport(device, { memory, createQueue });
          this.#pci.add(pci);
          this.#watchNotifies(pci, pci.notifyRegions(), (q) => pci.notify(q));
          pci.onNotifyRegionsChanged((regions) => {
            this.#unwatchNotifies(pci);
            this.#watchNotifies(pci, regions, (q) => pci.notify(q));
          });
        }
        for (const source of device.eventSources?.() ?? []) {
          loop.add(source.fd, () => source.onReadable());
          this.#watched.push(source.fd);
        }
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The PCI interrupt pins in use, for the MP table. */
  pciIntxSources(): PciIntxSource[] {
    return this.#pci.intxSources();
  }

  /** Releases eventfds, irqfds and the devices' host resources; idempotent. */
  close(): void {
    for (const owner of [...this.#notifiers.keys()]) this.#unwatchNotifies(owner);
    for (const fd of this.#watched.splice(0)) this.#loop.remove(fd);
    for (const { eventFd, gsi } of this.#irqfds.splice(0)) {
      this.#vm.unregisterIrqfd(eventFd.fd, gsi);
      eventFd.close();
    }
    for (const device of this.#devices.splice(0)) device.close?.();
  }

  #attachMmio(
    device: VirtioDevice,
    index: number,
    context: { memory: GuestMemory; mmio: Bus; createQueue: CreateQueue },
  ): void {
    const irq = VIRTIO_MMIO_IRQS[index];
    if (irq === undefined) {
      throw new VirtioWiringError(
        `Cannot add ${device.name} on virtio-mmio: at most ${VIRTIO_MMIO_IRQS.length} ` +
          `virtio-mmio devices fit; put the others on PCI (transport=pci)`,
      );
    }
    const base = VIRTIO_MMIO_START + index * VIRTIO_MMIO_WINDOW;
    const line = new EventFd();
    this.#vm.registerIrqfd(line.fd, irq);
    this.#irqfds.push({ eventFd: line, gsi: irq });
    const transport = new MmioTransport(device, {
      memory: context.memory,
      createQueue: context.createQueue,
      base,
      irq: { trigger: () => line.signal() },
    });
    context.mmio.insert(base, VIRTIO_MMIO_SIZE, device.name, transport);
    this.cmdline.push(mmioCmdlineFragment(base, irq));
    this.#watchNotifies(transport, transport.notifyRegions(), (q) => transport.notify(q));
  }

  #watchNotifies(owner: object, regions: NotifyRegion[], notify: (queue: number) => void): void {
    const notifiers: Notifier[] = [];
    this.#notifiers.set(owner, notifiers);
    for (const region of regions) {
      const eventFd = new EventFd();
      this.#vm.registerIoeventfd({
        address: region.address,
        length: region.length,
        fd: eventFd.fd,
        datamatch: region.datamatch === undefined ? undefined : BigInt(region.datamatch),
      });
      this.#loop.add(eventFd.fd, () => {
        eventFd.take();
        notify(region.queue);
      });
      notifiers.push({ region, eventFd });
    }
  }

  #unwatchNotifies(owner: object): void {
    for (const { region, eventFd } of this.#notifiers.get(owner) ?? []) {
      this.#loop.remove(eventFd.fd);
      this.#vm.unregisterIoeventfd({
        address: region.address,
        length: region.length,
        fd: eventFd.fd,
        datamatch: region.datamatch === undefined ? undefined : BigInt(region.datamatch),
      });
      eventFd.close();
    }
    this.#notifiers.delete(owner);
  }
}
