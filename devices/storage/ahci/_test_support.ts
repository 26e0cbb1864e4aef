/**
 * A guest AHCI driver for the tests, doing what SeaBIOS's src/hw/ahci.c does: program a
 * command list and received-FIS area in guest memory, build command tables with a FIS,
 * an ATAPI packet and a PRDT, issue through PxCI and read the outcome back.
 *
 * @module
 */

import { GuestMemory } from "../../../core/guest_memory.ts";
import { type Disk, DiskError } from "../../../storage/disk.ts";
import type { PciInterrupts } from "../../pci/pci_device.ts";
import { AhciController } from "./ahci_controller.ts";
import { CMD_FRE, CMD_ST, PX_CI, PX_CLB, PX_CMD, PX_FB, PX_IS, PX_TFD } from "./ahci_port.ts";
import type { SataDevice } from "./sata_device.ts";

/** Guest memory layout of the driver. */
export const CLB = 0x1_0000;
export const FB = 0x1_8000;
export const TABLE = 0x2_0000;
export const DATA = 0x10_0000;
export const RAM_SIZE = 0x40_0000;

/** One PRDT entry as the guest writes it. */
export interface Prd {
  readonly address: number | bigint;
  readonly length: number;
}

/** What an issued command left behind. */
export interface Outcome {
  readonly is: number;
  readonly tfd: number;
  readonly ci: number;
  readonly prdbc: number;
}

/** An in-memory disk image (writable unless `readOnly`). */
export class MemoryDisk implements Disk {
  readonly path: string;
  readonly readOnly: boolean;
  readonly id = "memory";
  readonly bytes: Uint8Array;
  flushes = 0;

  constructor(bytes: Uint8Array, readOnly = false, path = "memory.img") {
    this.bytes = bytes;
    this.readOnly = readOnly;
    this.path = path;
  }
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, buffers: readonly Uint8Array[]): void {
    for (const b of buffers) {
      if (offset + b.length > this.bytes.length) throw new DiskError("read past the end");
      b.set(this.bytes.subarray(offset, offset + b.length));
      offset += b.length;
    }
  }
  write(offset: number, buffers: readonly Uint8Array[]): void {
    if (this.readOnly) throw new DiskError("read-only");
    for (const b of buffers) {
      this.bytes.set(b, offset);
      offset += b.length;
    }
  }
  flush(): void {
    this.flushes++;
  }
  discard(): void {}
  writeZeroes(offset: number, length: number): void {
    this.bytes.fill(0, offset, offset + length);
  }
  close(): void {}
}

/** The driver. */
export class AhciDriver {
  readonly memory = GuestMemory.ofSize(RAM_SIZE);
  readonly hba: AhciController;
  readonly logs: string[] = [];
  intx = false;

  constructor(devices: (SataDevice | undefined)[]) {
    this.hba = new AhciController(this.memory, devices, (m) => this.logs.push(m));
    const interrupts: PciInterrupts = {
      msix: () => false,
      msixEnabled: false,
      setIntx: (high) => (this.intx = high),
    };
    this.hba.attach(interrupts);
  }

  readl(offset: number): number {
    const data = new Uint8Array(4);
    this.hba.bars[0].device.read(offset, data);
    return new DataView(data.buffer).getUint32(0, true);
  }

  writel(offset: number, value: number): void {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value >>> 0, true);
    this.hba.bars[0].device.write(offset, data);
  }

  port(n: number, register: number): number {
    return 0x100 + n * 0x80 + register;
  }

  /** Points port `n` at its command list and FIS area and starts it. */
  start(n: number): void {
    this.writel(this.port(n, PX_CLB), CLB + n * 0x400);
    this.writel(this.port(n, PX_FB), FB + n * 0x100);
    this.writel(this.port(n, PX_CMD), CMD_FRE | CMD_ST);
  }

  /** Issues `command` (with `packet` for ATA PACKET) in `slot` of port `n`. */
  issue(
    n: number,
    command: { fis: number[]; packet?: number[]; prds?: Prd[]; write?: boolean; slot?: number },
  ): Outcome {
    const slot = command.slot ?? 0;
    const table = TABLE + slot * 0x1000;
    const prds = command.prds ?? [];
    const header = CLB + n * 0x400 + slot * 32;
    const flags = 5 | (command.packet ? 1 << 5 : 0) | (command.write ? 1 << 6 : 0) |
      (prds.length << 16);
    this.memory.writeU32(header, flags);
    this.memory.writeU32(header + 4, 0);
    this.memory.writeU64(header + 8, table);
    this.memory.fill(table, 0x80);
    this.memory.write(table, Uint8Array.from(command.fis));
    if (command.packet) this.memory.write(table + 0x40, Uint8Array.from(command.packet));
    prds.forEach((prd, i) => {
      this.memory.writeU64(table + 0x80 + i * 16, BigInt(prd.address));
      this.memory.writeU32(table + 0x80 + i * 16 + 8, 0);
      this.memory.writeU32(table + 0x80 + i * 16 + 12, (prd.length - 1) & 0x3f_ffff);
    });
    this.writel(this.port(n, PX_IS), 0xffff_ffff);
    this.writel(this.port(n, PX_CI), 1 << slot);
    return {
      is: this.readl(this.port(n, PX_IS)),
      tfd: this.readl(this.port(n, PX_TFD)),
      ci: this.readl(this.port(n, PX_CI)),
      prdbc: this.memory.readU32(header + 4),
    };
  }

  /** SeaBIOS's error recovery: stop the port, clear errors, start it again. */
  recover(n: number): void {
    this.writel(this.port(n, PX_CMD), CMD_FRE);
    this.writel(this.port(n, PX_IS), 0xffff_ffff);
    this.writel(this.port(n, PX_CMD), CMD_FRE | CMD_ST);
  }
}

/** A Register H2D FIS for an ATA command with a 48-bit LBA and count. */
export function ataFis(command: number, lba = 0, count = 0): number[] {
  const fis = new Array(20).fill(0);
  fis[0] = 0x27;
  fis[1] = 0x80;
  fis[2] = command;
  fis[4] = lba & 0xff;
  fis[5] = (lba >>> 8) & 0xff;
  fis[6] = (lba >>> 16) & 0xff;
  fis[7] = 0x40; // LBA mode
  fis[8] = Math.floor(lba / 2 ** 24) & 0xff;
  fis[9] = Math.floor(lba / 2 ** 32) & 0xff;
  fis[10] = Math.floor(lba / 2 ** 40) & 0xff;
  fis[12] = count & 0xff;
  fis[13] = (count >>> 8) & 0xff;
  return fis;
}
