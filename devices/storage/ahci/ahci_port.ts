/**
 * One AHCI port (AHCI 1.3.1, 3.3 and 5): its registers, and the command engine that runs
 * the command list the guest points it at. Commands run to completion when the guest
 * sets their bit in PxCI (no command stays in flight, so nothing but registers needs
 * saving).
 *
 * Everything the guest wrote into memory is untrusted: the command header, the command
 * table and every PRDT entry are read once, each address and length is checked against
 * guest RAM before any byte moves, and a bad one fails that command (task-file error,
 * ABRT) without touching anything else.
 *
 * @module
 */

import type { GuestMemory } from "../../../core/guest_memory.ts";
import type { StateReader } from "../../../common/persist.ts";
import {
  ATA_STATUS_ERR,
  ATA_STATUS_OK,
  type CommandResult,
  type SataDevice,
  ScatterList,
} from "./sata_device.ts";

/** Port register offsets (from the port's base, 0x100 + 0x80 * n in the ABAR). */
export const PX_CLB = 0x00;
export const PX_CLBU = 0x04;
export const PX_FB = 0x08;
export const PX_FBU = 0x0c;
export const PX_IS = 0x10;
export const PX_IE = 0x14;
export const PX_CMD = 0x18;
export const PX_TFD = 0x20;
export const PX_SIG = 0x24;
export const PX_SSTS = 0x28;
export const PX_SCTL = 0x2c;
export const PX_SERR = 0x30;
export const PX_SACT = 0x34;
export const PX_CI = 0x38;

/** PxIS bits. */
export const IS_DHRS = 1 << 0;
export const IS_PSS = 1 << 1;
export const IS_TFES = 1 << 30;
/** PxCMD bits. */
export const CMD_ST = 1 << 0;
export const CMD_SUD = 1 << 1;
export const CMD_POD = 1 << 2;
export const CMD_CLO = 1 << 3;
export const CMD_FRE = 1 << 4;
export const CMD_FR = 1 << 14;
export const CMD_CR = 1 << 15;
export const CMD_ATAPI = 1 << 24;
/** Writable PxCMD bits (ST, SUD, POD, FRE, ATAPI, ICC); CLO is handled, the rest read-only. */
const CMD_WRITABLE = CMD_ST | CMD_SUD | CMD_POD | CMD_FRE | CMD_ATAPI | (0xf << 28);

/** Command slots per port (CAP.NCS + 1). */
export const COMMAND_SLOTS = 32;
/** Most PRDT entries one command may have (the 16-bit PRDTL field). */
const MAX_PRDT_ENTRIES = 0xffff;
/** Most bytes one PRDT entry may describe (DBC is 22 bits, plus one). */
const MAX_PRD_BYTES = 1 << 22;
const COMMAND_HEADER_SIZE = 32;
const COMMAND_TABLE_PRDT = 0x80;
const COMMAND_TABLE_ACMD = 0x40;
const PRD_SIZE = 16;
/** Received-FIS area: PIO Setup FIS at 0x20, D2H Register FIS at 0x40, 256 bytes in all. */
const RFIS_PIO_SETUP = 0x20;
const RFIS_D2H = 0x40;
const RFIS_SIZE = 0x100;
const FIS_REG_H2D = 0x27;
const FIS_REG_D2H = 0x34;
const FIS_PIO_SETUP = 0x5f;
/** PxSSTS when a device is present: DET 3 (established), SPD 1 (Gen1), IPM 1 (active). */
const SSTS_PRESENT = 0x113;

/** The saved registers of a port. */
export interface AhciPortState {
  readonly clb: string;
  readonly fb: string;
  readonly is: number;
  readonly ie: number;
  readonly cmd: number;
  readonly tfd: number;
  readonly sctl: number;
  readonly serr: number;
  readonly device?: unknown;
}

/** One port, with or without a device. */
export class AhciPort {
  readonly #memory: GuestMemory;
  readonly #device: SataDevice | undefined;
  readonly #onInterrupt: () => void;
  readonly #log: (message: string) => void;
  #clb = 0;
  #fb = 0;
  #is = 0;
  #ie = 0;
  #cmd = 0;
  #tfd = 0x7f;
  #sctl = 0;
  #serr = 0;
  #ci = 0;

  constructor(
    memory: GuestMemory,
    device: SataDevice | undefined,
    onInterrupt: () => void,
    log: (message: string) => void,
  ) {
    this.#memory = memory;
    this.#device = device;
    this.#onInterrupt = onInterrupt;
    this.#log = log;
    this.reset();
  }

  /** The device on this port. */
  get device(): SataDevice | undefined {
    return this.#device;
  }

  /** Whether the port asks for an interrupt (PxIS & PxIE). */
  get interruptPending(): boolean {
    return (this.#is & this.#ie) !== 0;
  }

  /** Back to power-on state (HBA reset or COMRESET). */
  reset(): void {
    this.#is = 0;
    this.#ie = 0;
    this.#cmd = CMD_SUD | CMD_POD | (this.#device?.signature === 0xeb14_0101 ? CMD_ATAPI : 0);
    this.#ci = 0;
    this.#serr = 0;
    // A present device is ready at once; an empty port reports "no device" (0x7f).
    this.#tfd = this.#device ? ATA_STATUS_OK : 0x7f;
  }

  read(offset: number): number {
    switch (offset) {
      case PX_CLB:
        return this.#clb % 2 ** 32;
      case PX_CLBU:
        return Math.floor(this.#clb / 2 ** 32);
      case PX_FB:
        return this.#fb % 2 ** 32;
      case PX_FBU:
        return Math.floor(this.#fb / 2 ** 32);
      case PX_IS:
        return this.#is >>> 0;
      case PX_IE:
        return this.#ie;
      case PX_CMD:
        // CR and FR follow ST and FRE at once: the engines start and stop instantly.
        return (this.#cmd | (this.#cmd & CMD_ST ? CMD_CR : 0) |
          (this.#cmd & CMD_FRE ? CMD_FR : 0)) >>> 0;
      case PX_TFD:
        return this.#tfd;
      case PX_SIG:
        return this.#device?.signature ?? 0xffff_ffff;
      case PX_SSTS:
        return this.#device && (this.#sctl & 0xf) !== 1 ? SSTS_PRESENT : 0;
      case PX_SCTL:
        return this.#sctl;
      case PX_SERR:
        return this.#serr;
      case PX_CI:
        return this.#ci >>> 0;
      default:
        return 0; // SACT (no NCQ), SNTF, FBS, vendor registers
    }
  }

  write(offset: number, value: number): void {
    switch (offset) {
      case PX_CLB:
        this.#clb = setLow(this.#clb, value & ~0x3ff);
        return;
      case PX_CLBU:
        this.#clb = setHigh(this.#clb, value);
        return;
      case PX_FB:
        this.#fb = setLow(this.#fb, value & ~0xff);
        return;
      case PX_FBU:
        this.#fb = setHigh(this.#fb, value);
        return;
      case PX_IS:
        this.#is = (this.#is & ~value) >>> 0;
        return this.#onInterrupt();
      case PX_IE:
        this.#ie = value >>> 0;
        return this.#onInterrupt();
      case PX_CMD:
        return this.#writeCommand(value);
      case PX_SCTL:
        this.#sctl = value & 0xfff;
        // DET 1 holds the link in COMRESET; releasing it resets the device.
        if ((value & 0xf) === 0 && this.#device) this.#comreset();
        return;
      case PX_SERR:
        this.#serr = (this.#serr & ~value) >>> 0;
        return;
      case PX_CI:
        // Only a running port takes commands (AHCI 3.3.14).
        if (!(this.#cmd & CMD_ST)) return;
        this.#ci = (this.#ci | value) >>> 0;
        return this.#runCommands();
    }
  }

  save(): AhciPortState {
    return {
      clb: savedAddress(this.#clb),
      fb: savedAddress(this.#fb),
      is: this.#is >>> 0,
      ie: this.#ie >>> 0,
      cmd: this.#cmd >>> 0,
      tfd: this.#tfd,
      sctl: this.#sctl,
      serr: this.#serr >>> 0,
      device: this.#device?.save(),
    };
  }

  restore(reader: StateReader): void {
    const clb = Number(reader.u64("clb"));
    const fb = Number(reader.u64("fb"));
    const is = reader.integer("is", 0, 0xffff_ffff);
    const ie = reader.integer("ie", 0, 0xffff_ffff);
    const cmd = reader.integer("cmd", 0, 0xffff_ffff);
    const tfd = reader.integer("tfd", 0, 0xffff);
    const sctl = reader.integer("sctl", 0, 0xfff);
    const serr = reader.integer("serr", 0, 0xffff_ffff);
    if (this.#device) this.#device.restore(reader.raw("device"));
    this.#clb = clb - (clb % 1024);
    this.#fb = fb - (fb % 256);
    this.#is = is;
    this.#ie = ie;
    this.#cmd = cmd & CMD_WRITABLE;
    this.#tfd = tfd;
    this.#sctl = sctl;
    this.#serr = serr;
    this.#ci = 0;
  }

  #writeCommand(value: number): void {
    const wasRunning = (this.#cmd & CMD_ST) !== 0;
    this.#cmd = (value & CMD_WRITABLE) >>> 0;
    // Command list override: clears BSY and DRQ so a stuck device can be restarted.
    if (value & CMD_CLO) this.#tfd &= ~0x88;
    // Clearing ST stops the engine and drops every command not yet run (AHCI 3.3.14).
    if (wasRunning && !(value & CMD_ST)) this.#ci = 0;
  }

  #comreset(): void {
    this.reset();
    // The device announces itself with a D2H FIS carrying its signature.
    const fis = new Uint8Array(20);
    const sig = this.#device!.signature;
    fis[0] = FIS_REG_D2H;
    fis[2] = ATA_STATUS_OK;
    fis[4] = (sig >>> 8) & 0xff;
    fis[5] = (sig >>> 16) & 0xff;
    fis[6] = (sig >>> 24) & 0xff;
    fis[12] = sig & 0xff;
    this.#postFis(RFIS_D2H, fis);
  }

  /** Runs issued commands in slot order until the list is empty or a command fails. */
  #runCommands(): void {
    for (let slot = 0; slot < COMMAND_SLOTS && this.#ci !== 0; slot++) {
      const bit = (1 << slot) >>> 0;
      if (!(this.#ci & bit)) continue;
      const result = this.#runSlot(slot);
      const failed = (result.status & ATA_STATUS_ERR) !== 0;
      this.#tfd = (result.error << 8) | result.status;
      const d2h = new Uint8Array(20);
      d2h[0] = FIS_REG_D2H;
      d2h[1] = 0x40; // interrupt
      d2h[2] = result.status;
      d2h[3] = result.error;
      if (result.pio && !failed) {
        const pio = new Uint8Array(20);
        pio[0] = FIS_PIO_SETUP;
        pio[1] = 0x60; // data to host, interrupt
        pio[2] = result.status;
        pio[15] = result.status; // E_Status
        new DataView(pio.buffer).setUint16(16, result.transferred, true);
        this.#postFis(RFIS_PIO_SETUP, pio);
        this.#is |= IS_PSS;
      }
      this.#postFis(RFIS_D2H, d2h);
      // The D2H FIS carries the I bit, failed or not (AHCI 3.3.5: DHRS). SeaBIOS waits for
      // DHRS or PSS only: an error flagged by TFES alone cost it a 32 s timeout per probe.
      this.#is = (this.#is | IS_DHRS) >>> 0;
      if (failed) {
        // The port stops at the failing slot; the driver clears ST to recover (AHCI 6.2.2).
        this.#is = (this.#is | IS_TFES) >>> 0;
        this.#onInterrupt();
        return;
      }
      this.#ci = (this.#ci & ~bit) >>> 0;
    }
    this.#onInterrupt();
  }

  /** Reads slot `slot`'s header and table, checks them, and runs the command. */
  #runSlot(slot: number): CommandResult {
    const fail = (why: string): CommandResult => {
      this.#log(`ahci: command slot ${slot}: ${why}`);
      return { status: ATA_STATUS_OK | ATA_STATUS_ERR, error: 0x04, transferred: 0 };
    };
    const device = this.#device;
    if (!device) return fail("no device on this port");
    const headerAddress = this.#clb + slot * COMMAND_HEADER_SIZE;
    if (!this.#memory.contains(headerAddress, COMMAND_HEADER_SIZE)) {
      return fail(`command list at 0x${this.#clb.toString(16)} is outside guest RAM`);
    }
    const header = this.#memory.read(headerAddress, COMMAND_HEADER_SIZE);
    const view = new DataView(header.buffer);
    const flags = view.getUint32(0, true);
    const fisLength = (flags & 0x1f) * 4;
    const prdtl = flags >>> 16;
    const table = view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
    if (fisLength < 20 || fisLength > 64) return fail(`command FIS length ${fisLength} is invalid`);
    if (table % 128 !== 0) return fail("command table is not 128-byte aligned");
    const tableLength = COMMAND_TABLE_PRDT + prdtl * PRD_SIZE;
    if (prdtl > MAX_PRDT_ENTRIES || !this.#memory.contains(table, tableLength)) {
      return fail(`command table at 0x${table.toString(16)} (${prdtl} PRDs) is outside guest RAM`);
    }
    const bytes = this.#memory.read(table, tableLength);
    const fis = bytes.subarray(0, 20);
    if (fis[0] !== FIS_REG_H2D || !(fis[1] & 0x80)) return fail("not a Register H2D command FIS");
    const packet = bytes.subarray(COMMAND_TABLE_ACMD, COMMAND_TABLE_ACMD + 16);
    const buffers: Uint8Array[] = [];
    const prds = new DataView(bytes.buffer, COMMAND_TABLE_PRDT);
    for (let i = 0; i < prdtl; i++) {
      const address = prds.getUint32(i * PRD_SIZE, true) +
        prds.getUint32(i * PRD_SIZE + 4, true) * 2 ** 32;
      const length = (prds.getUint32(i * PRD_SIZE + 12, true) & (MAX_PRD_BYTES - 1)) + 1;
      if (!this.#memory.contains(address, length)) {
        return fail(`PRD ${i} (${length} bytes at 0x${address.toString(16)}) is outside guest RAM`);
      }
      buffers.push(this.#memory.slice(address, length));
    }
    const result = device.execute(fis, packet, new ScatterList(buffers));
    // PRDBC: bytes transferred, for the driver to check.
    this.#memory.writeU32(headerAddress + 4, result.transferred);
    return result;
  }

  #postFis(offset: number, fis: Uint8Array): void {
    if (!(this.#cmd & CMD_FRE)) return;
    if (!this.#memory.contains(this.#fb, RFIS_SIZE)) {
      this.#log(`ahci: received-FIS area at 0x${this.#fb.toString(16)} is outside guest RAM`);
      return;
    }
    this.#memory.write(this.#fb + offset, fis);
  }
}

function setLow(address: number, low: number): number {
  return Math.floor(address / 2 ** 32) * 2 ** 32 + (low >>> 0);
}

/**
 * An address with a new high half. Above 2^53 the number is no longer exact, but it is
 * then no safe integer either, and GuestMemory refuses every access to it.
 */
function setHigh(address: number, high: number): number {
  return (high >>> 0) * 2 ** 32 + (address % 2 ** 32);
}

/** An address as a saved u64 (a double just below 2^64 may round up to it: clamp). */
function savedAddress(address: number): string {
  const value = BigInt(address);
  return `0x${(value > 0xffff_ffff_ffff_ffffn ? 0xffff_ffff_ffff_ffffn : value).toString(16)}`;
}
