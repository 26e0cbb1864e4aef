/**
 * Queue notifications without exits: an ioeventfd per notification address of a virtio
 * transport, read by the event loop, so a guest's kick is a counter increment in the
 * kernel and a callback here, never a vCPU exit to user space.
 *
 * @module
 */

import type { NotifyRegion } from "../devices/virtio/transport_state.ts";
import { EventFd } from "../ffi/eventfd.ts";
import type { EventLoop } from "../core/event_loop.ts";
import type { Vm } from "../core/vm.ts";

interface Notifier {
  region: NotifyRegion;
  eventFd: EventFd;
}

/** The ioeventfds of every transport of one machine, by transport. */
export class NotifyWiring {
  readonly #vm: Vm;
  readonly #loop: EventLoop;
  readonly #notifiers = new Map<object, Notifier[]>();

  constructor(vm: Vm, loop: EventLoop) {
    this.#vm = vm;
    this.#loop = loop;
  }

  /** Registers an ioeventfd per region of `owner`; `notify(queue)` runs when one fires. */
  watch(owner: object, regions: NotifyRegion[], notify: (queue: number) => void): void {
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

  /** Undoes `watch(owner, ...)` (a PCI BAR moved, or the machine closes). */
  unwatch(owner: object): void {
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

  /** Undoes every watch; idempotent. */
  close(): void {
    for (const owner of [...this.#notifiers.keys()]) this.unwatch(owner);
  }
}
