/**
 * MSI delivery on KVM: each vector is a GSI with an MSI routing entry and an irqfd, so a
 * device fires an interrupt with one eventfd write and no ioctl. The GSI routing table is
 * rewritten (KVM replaces it whole) when the guest reprograms a vector: rare.
 *
 * @module
 */

import { EventFd } from "../ffi/eventfd.ts";
import type { IrqRoute } from "../ffi/kvm/vm_structs.ts";
import { MSI_FIRST_GSI } from "./layout.ts";
import { Vm } from "./vm.ts";

type Message = { addressLo: number; addressHi: number; data: number };

/**
 * MSI delivery as devices see it (PCI MSI-X tables program it): one route per vector.
 * Core owns the contract; `KvmMsiController` is KVM's implementation.
 */
export interface MsiController {
  allocate(): MsiRoute;
}

/** One MSI route: the message the guest programmed, and a way to fire it. */
export interface MsiRoute {
  /** Programs (or with undefined, disables) the message. */
  setMessage(message: Message | undefined): void;
  /** Fires the message (an irqfd write: no ioctl, no exit). */
  trigger(): void;
  release(): void;
}

/** Hands out MSI routes on one VM. */
export class KvmMsiController implements MsiController {
  readonly #vm: Vm;
  readonly #messages = new Map<number, Message | undefined>();
  readonly #freeGsis: number[] = [];
  #nextGsi = MSI_FIRST_GSI;

  constructor(vm: Vm) {
    this.#vm = vm;
  }

  allocate(): MsiRoute {
    const gsi = this.#freeGsis.pop() ?? this.#nextGsi++;
    const line = new EventFd();
    this.#vm.registerIrqfd(line.fd, gsi);
    this.#messages.set(gsi, undefined);
    return {
      setMessage: (message) => {
        this.#messages.set(gsi, message && { ...message });
        this.#publish();
      },
      trigger: () => line.signal(),
      release: () => {
        this.#vm.unregisterIrqfd(line.fd, gsi);
        line.close();
        this.#messages.delete(gsi);
        this.#freeGsis.push(gsi);
        this.#publish();
      },
    };
  }

  /** The MSI routes currently programmed, after the PC's fixed routes. */
  routes(): IrqRoute[] {
    const routes = Vm.defaultRoutes();
    for (const [gsi, message] of this.#messages) {
      if (message) routes.push({ gsi, kind: "msi", ...message });
    }
    return routes;
  }

  #publish(): void {
    this.#vm.setGsiRouting(this.routes());
  }
}
