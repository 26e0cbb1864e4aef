/**
 * An AHCI 1.3 SATA host bus adapter on PCI (ICH9's 8086:2922, class 0x010601, the
 * controller SeaBIOS, Linux and Windows drive without extra drivers): the generic host
 * control registers and up to six ports in BAR 5 (ABAR), interrupts on INTx.
 *
 * @module
 */

import type { GuestMemory } from "../../../core/guest_memory.ts";
import { DenovisorError } from "../../../common/errors.ts";
import {
  type Persistable,
  StateError,
  StateReader,
  type VersionedState,
} from "../../../common/persist.ts";
import type { BusDevice } from "../../../core/bus_device.ts";
import type { PciBar, PciCapability, PciFunction, PciInterrupts } from "../../pci/pci_device.ts";
import { AhciPort, type AhciPortState, COMMAND_SLOTS } from "./ahci_port.ts";
import type { SataDevice } from "./sata_device.ts";

/** Intel ICH9 AHCI controller. */
export const AHCI_VENDOR_ID = 0x8086;
export const AHCI_DEVICE_ID = 0x2922;
/** Mass storage, SATA, AHCI 1.0 programming interface. */
export const AHCI_CLASS = 0x010601;
/** ABAR is BAR 5. */
export const AHCI_ABAR = 5;
/** Ports per controller (ICH9 has six). */
export const AHCI_MAX_PORTS = 6;
const ABAR_SIZE = 0x1000;
const PORT_BASE = 0x100;
const PORT_SIZE = 0x80;

/** Generic host control registers. */
export const HBA_CAP = 0x00;
export const HBA_GHC = 0x04;
export const HBA_IS = 0x08;
export const HBA_PI = 0x0c;
export const HBA_VS = 0x10;
export const GHC_HR = 1 << 0;
export const GHC_IE = 1 << 1;
export const GHC_AE = 1 << 31;

/** The controller was configured with too many devices. */
export class AhciConfigError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Saved state of the controller. */
export interface AhciState extends VersionedState {
  readonly version: 1;
  readonly ghc: number;
  readonly ports: readonly AhciPortState[];
}

/** The AHCI HBA: a PCI function whose ABAR holds its registers. */
export class AhciController implements PciFunction, Persistable<AhciState> {
  readonly vendorId = AHCI_VENDOR_ID;
  readonly deviceId = AHCI_DEVICE_ID;
  readonly subsystemVendorId = 0x1af4;
  readonly subsystemId = 0x1100;
  readonly classCode = AHCI_CLASS;
  readonly revisionId = 2;
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 1;
  readonly bars: readonly PciBar[];
  readonly ports: readonly AhciPort[];
  #interrupts: PciInterrupts | undefined;
  #ghc = GHC_AE;

  /** A controller with one port per entry of `devices` (undefined leaves a port empty). */
  constructor(
    memory: GuestMemory,
    devices: readonly (SataDevice | undefined)[],
    log: (message: string) => void = console.warn,
  ) {
    if (devices.length === 0 || devices.length > AHCI_MAX_PORTS) {
      throw new AhciConfigError(
        `An AHCI controller has 1-${AHCI_MAX_PORTS} ports; ${devices.length} devices were given`,
      );
    }
    this.ports = devices.map((device) => new AhciPort(memory, device, () => this.#update(), log));
    const abar: BusDevice = {
      read: (offset, data) => this.#read(offset, data),
      write: (offset, data) => this.#write(offset, data),
    };
    this.bars = [{ index: AHCI_ABAR, size: ABAR_SIZE, kind: "mem32", device: abar }];
  }

  attach(interrupts: PciInterrupts): void {
    this.#interrupts = interrupts;
  }

  save(): AhciState {
    return { version: 1, ghc: this.#ghc >>> 0, ports: this.ports.map((p) => p.save()) };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const ghc = reader.integer("ghc", 0, 0xffff_ffff);
    const ports = reader.array(
      "ports",
      AHCI_MAX_PORTS,
      (entry, path) => new StateReader(entry, path),
    );
    if (ports.length !== this.ports.length) {
      throw new StateError(
        reader.fieldPath("ports"),
        `${ports.length} ports saved, this controller has ${this.ports.length}`,
      );
    }
    // Each port checks its state before changing; a later port's bad state rolls back the
    // earlier ones, so a refused state leaves the controller as it was.
    const before = this.save();
    try {
      this.ports.forEach((port, i) => port.restore(ports[i]));
    } catch (error) {
      this.ports.forEach((port, i) => port.restore(new StateReader(before.ports[i])));
      throw error;
    }
    this.#ghc = (ghc & GHC_IE) | GHC_AE;
    this.#update();
  }

  #readRegister(offset: number): number {
    if (offset >= PORT_BASE) {
      const index = Math.floor((offset - PORT_BASE) / PORT_SIZE);
      return this.ports[index]?.read((offset - PORT_BASE) % PORT_SIZE) ?? 0;
    }
    switch (offset) {
      case HBA_CAP:
        // S64A, SNCQ off, SAM (AHCI only), ISS Gen1, NCS 31, NP.
        return ((1 << 31) | (1 << 18) | (1 << 20) | ((COMMAND_SLOTS - 1) << 8) |
          (this.ports.length - 1)) >>> 0;
      case HBA_GHC:
        return this.#ghc >>> 0;
      case HBA_IS:
        return this.#pendingPorts();
      case HBA_PI:
        return (1 << this.ports.length) - 1;
      case HBA_VS:
        return 0x0001_0300;
      default:
        return 0; // CCC, EM, CAP2, BOHC: not implemented features read as absent
    }
  }

  #writeRegister(offset: number, value: number): void {
    if (offset >= PORT_BASE) {
      const index = Math.floor((offset - PORT_BASE) / PORT_SIZE);
      this.ports[index]?.write((offset - PORT_BASE) % PORT_SIZE, value >>> 0);
      return;
    }
    if (offset === HBA_GHC) {
      if (value & GHC_HR) {
        // HBA reset completes at once: ports reset, GHC back to AE only.
        this.ports.forEach((port) => port.reset());
        this.#ghc = GHC_AE;
      } else {
        this.#ghc = (value & GHC_IE) | GHC_AE; // AE is fixed: this HBA is AHCI-only
      }
      this.#update();
    }
    // HBA_IS is write-1-to-clear over levels the ports hold; the ports' PxIS decide it.
  }

  /** Registers are 32-bit; narrower accesses see or change their bytes of the dword. */
  #read(offset: number, data: Uint8Array): void {
    const aligned = offset & ~3;
    let value = this.#readRegister(aligned);
    if (data.length === 8) {
      const high = this.#readRegister(aligned + 4);
      new DataView(data.buffer, data.byteOffset, 8).setUint32(4, high, true);
      new DataView(data.buffer, data.byteOffset, 8).setUint32(0, value, true);
      return;
    }
    value >>>= 8 * (offset & 3);
    for (let i = 0; i < data.length; i++) data[i] = (value >>> (8 * i)) & 0xff;
  }

  #write(offset: number, data: Uint8Array): void {
    const aligned = offset & ~3;
    if (data.length === 8) {
      const view = new DataView(data.buffer, data.byteOffset, 8);
      this.#writeRegister(aligned, view.getUint32(0, true));
      this.#writeRegister(aligned + 4, view.getUint32(4, true));
      return;
    }
    if (data.length !== 4 || (offset & 3) !== 0) return; // AHCI registers take dword writes only
    this.#writeRegister(aligned, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
  }

  #pendingPorts(): number {
    let pending = 0;
    this.ports.forEach((port, i) => {
      if (port.interruptPending) pending |= 1 << i;
    });
    return pending >>> 0;
  }

  #update(): void {
    this.#interrupts?.setIntx((this.#ghc & GHC_IE) !== 0 && this.#pendingPorts() !== 0);
  }
}
