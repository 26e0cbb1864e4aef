/**
 * The contract between the PCI layer (config-space mechanism, host bridge, BAR placement,
 * MSI-X table, INTx) and the functions on the bus (the virtio-pci transport). A function
 * describes its identity, BARs and capabilities; the PCI layer does the generic parts.
 *
 * @module
 */

import type { BusDevice } from "../bus_device.ts";
import type { PciConfigPersist } from "./config_space_state.ts";

/** One base address register of a function. */
export interface PciBar {
  /** BAR number 0-5 (a 64-bit BAR also uses the next number). */
  readonly index: number;
  /** Size in bytes, a power of two (at least 4096 for memory BARs). */
  readonly size: number;
  readonly kind: "mem32" | "mem64" | "io";
  readonly prefetchable?: boolean;
  /** What answers accesses inside the BAR, at offsets from its start. */
  readonly device: BusDevice;
}

/**
 * A capability in config space. The PCI layer links the list (ID and next pointer) and
 * places each body; MSI-X is not listed here (see `PciFunction.msix`).
 */
export interface PciCapability {
  /** Capability ID, e.g. 0x09 for vendor-specific (virtio). */
  readonly id: number;
  /** Bytes after the ID and next-pointer bytes (for virtio: cap_len, cfg_type, bar...). */
  readonly body: Uint8Array;
  /** Called after the guest wrote into the body (offset within the body). */
  onWrite?(offset: number, data: Uint8Array): void;
}

/** MSI-X as the function wants it: the PCI layer implements capability, table and PBA. */
export interface PciMsixLayout {
  readonly vectors: number;
  /** BAR holding the table and the PBA, and their offsets in it (8-byte aligned). */
  readonly bar: number;
  readonly tableOffset: number;
  readonly pbaOffset: number;
}

/** How a function raises interrupts, handed over when it is placed on the bus. */
export interface PciInterrupts {
  /**
   * Sends MSI-X vector `vector` if MSI-X is enabled and the vector unmasked (else sets its
   * pending bit and returns false). Returns false too when MSI-X is off: use INTx then.
   */
  msix(vector: number): boolean;
  /** Whether the driver enabled MSI-X (then INTx must stay quiet). */
  readonly msixEnabled: boolean;
  /** Drives the function's INTx line (level-triggered; the PCI layer honours INTx Disable). */
  setIntx(high: boolean): void;
}

/** A PCI function (device 0..31, function 0) as the bus sees it. */
export interface PciFunction {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** Class code, subclass and programming interface as 0xCCSSPP. */
  readonly classCode: number;
  readonly revisionId: number;
  readonly bars: readonly PciBar[];
  readonly capabilities: readonly PciCapability[];
  readonly msix?: PciMsixLayout;
  /** 1 (INTA#) .. 4 (INTD#), or 0 for none. */
  readonly interruptPin: number;
  /**
   * Called once the function is on the bus, with its interrupts and its configuration
   * space as a persistable piece (so the function's saved state can include it).
   */
  attach(interrupts: PciInterrupts, config?: PciConfigPersist): void;
  /** A memory BAR was (re)programmed by the guest: `address` is its new base, 0 if disabled. */
  barMoved?(index: number, address: number): void;
  /**
   * Device-specific registers at 0x40-0xff outside the capability list (a chipset's PAM
   * or PIRQ registers): the dword at aligned `offset`. Unset reads as zero.
   */
  readConfig?(offset: number): number;
  /** A guest write of the bytes `mask` selects from `value` into the dword at `offset`. */
  writeConfig?(offset: number, value: number, mask: number): void;
}

/** MSI delivery provided by the VMM: one KVM GSI with an MSI route and an irqfd per vector. */
export interface MsiController {
  allocate(): MsiRoute;
}

/** One MSI route: the message the guest programmed, and a way to fire it. */
export interface MsiRoute {
  /** Programs (or with undefined, disables) the message. */
  setMessage(message: { addressLo: number; addressHi: number; data: number } | undefined): void;
  /** Fires the message (an irqfd write: no ioctl, no exit). */
  trigger(): void;
  release(): void;
}
