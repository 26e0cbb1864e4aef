/**
 * Test doubles for the PCI layer: an MSI controller that records what routes carry and
 * how often they fire, a BAR device that records accesses, and a configurable function.
 *
 * @module
 */

import type { BusDevice } from "../../bus_device.ts";
import type {
  MsiController,
  MsiRoute,
  PciBar,
  PciCapability,
  PciFunction,
  PciInterrupts,
  PciMsixLayout,
} from "../pci_device.ts";

type Message = { addressLo: number; addressHi: number; data: number };

/** One route of the fake controller, with what happened to it. */
export interface FakeRoute extends MsiRoute {
  readonly message: Message | undefined;
  /** Every setMessage call, in order. */
  readonly programmed: (Message | undefined)[];
  readonly triggers: number;
  readonly released: boolean;
}

/** Hands out recording routes. */
export class FakeMsiController implements MsiController {
  readonly routes: FakeRoute[] = [];

  allocate(): MsiRoute {
    const route = {
      message: undefined as Message | undefined,
      programmed: [] as (Message | undefined)[],
      triggers: 0,
      released: false,
      setMessage(message: Message | undefined) {
        route.message = message && { ...message };
        route.programmed.push(route.message);
      },
      trigger() {
        route.triggers++;
      },
      release() {
        route.released = true;
      },
    };
    this.routes.push(route);
    return route;
  }
}

/** A BAR device that records accesses and reads back `0xa0 + offset` per byte. */
export class RecordingDevice implements BusDevice {
  readonly reads: { offset: number; length: number }[] = [];
  readonly writes: { offset: number; bytes: number[] }[] = [];

  read(offset: number, data: Uint8Array): void {
    this.reads.push({ offset, length: data.length });
    for (let i = 0; i < data.length; i++) data[i] = (0xa0 + offset + i) & 0xff;
  }

  write(offset: number, data: Uint8Array): void {
    this.writes.push({ offset, bytes: [...data] });
  }
}

/** What `testFunction()` lets a test choose. */
export interface TestFunctionOptions {
  bars?: PciBar[];
  capabilities?: PciCapability[];
  msix?: PciMsixLayout;
  interruptPin?: number;
}

/** A function that records its interrupts handle and BAR moves. */
export interface TestFunction extends PciFunction {
  interrupts?: PciInterrupts;
  readonly moves: { index: number; address: number }[];
}

/** A virtio-like function: vendor 0x1af4, device 0x1042, class 0x010000, pin INTA#. */
export function testFunction(options: TestFunctionOptions = {}): TestFunction {
  const fn: TestFunction = {
    vendorId: 0x1af4,
    deviceId: 0x1042,
    subsystemVendorId: 0x1af4,
    subsystemId: 0x1100,
    classCode: 0x010000,
    revisionId: 1,
    bars: options.bars ?? [],
    capabilities: options.capabilities ?? [],
    msix: options.msix,
    interruptPin: options.interruptPin ?? 1,
    moves: [],
    attach(interrupts) {
      fn.interrupts = interrupts;
    },
    barMoved(index, address) {
      fn.moves.push({ index, address });
    },
  };
  return fn;
}

/** Config accesses to one slot of bus 0 through the 0xcf8/0xcfc ports, as Linux does them. */
export interface Conf1Slot {
  read8(register: number): number;
  read16(register: number): number;
  read32(register: number): number;
  write8(register: number, value: number): void;
  write16(register: number, value: number): void;
  write32(register: number, value: number): void;
}

/** Drives `ports` (a device for 0xcf8-0xcff) like Linux's pci_conf1_read/write. */
export function conf1Slot(ports: BusDevice, slot: number): Conf1Slot {
  const select = (register: number) => {
    const address = (0x8000_0000 | (slot << 11) | (register & 0xfc)) >>> 0;
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, address, true);
    ports.write(0, bytes);
  };
  const read = (register: number, length: number) => {
    select(register);
    const data = new Uint8Array(length);
    ports.read(4 + (register & 3), data);
    return data.reduceRight((value, byte) => value * 256 + byte, 0);
  };
  const write = (register: number, length: number, value: number) => {
    select(register);
    const data = new Uint8Array(length);
    for (let i = 0; i < length; i++) data[i] = Math.floor(value / 256 ** i) & 0xff;
    ports.write(4 + (register & 3), data);
  };
  return {
    read8: (r) => read(r, 1),
    read16: (r) => read(r, 2),
    read32: (r) => read(r, 4),
    write8: (r, v) => write(r, 1, v),
    write16: (r, v) => write(r, 2, v),
    write32: (r, v) => write(r, 4, v),
  };
}
