/**
 * An ATA disk behind an AHCI port: IDENTIFY, READ/WRITE DMA (28- and 48-bit LBA, and the
 * PIO forms, which move data the same way through AHCI), FLUSH CACHE (EXT), READ VERIFY
 * and the housekeeping commands drivers send at probe. Any other command is aborted.
 * The data goes straight between the image and the guest's checked buffers.
 *
 * @module
 */

import { StateReader, type VersionedState } from "../../../common/persist.ts";
import { type Disk, DiskError } from "../../../storage/disk.ts";
import { type DriveIdentity, identifyDisk } from "./identify.ts";
import {
  aborted,
  ATA_STATUS_ERR,
  ATA_STATUS_OK,
  type CommandResult,
  completed,
  type SataDevice,
  type ScatterList,
} from "./sata_device.ts";

/** ATA commands this disk runs. */
export const ATA_READ_SECTORS = 0x20;
export const ATA_READ_SECTORS_EXT = 0x24;
export const ATA_READ_DMA_EXT = 0x25;
export const ATA_WRITE_SECTORS = 0x30;
export const ATA_WRITE_SECTORS_EXT = 0x34;
export const ATA_WRITE_DMA_EXT = 0x35;
export const ATA_READ_VERIFY = 0x40;
export const ATA_READ_VERIFY_EXT = 0x42;
export const ATA_INITIALIZE_DEVICE_PARAMETERS = 0x91;
export const ATA_PACKET = 0xa0;
export const ATA_IDENTIFY_PACKET_DEVICE = 0xa1;
export const ATA_SET_MULTIPLE = 0xc6;
export const ATA_READ_DMA = 0xc8;
export const ATA_WRITE_DMA = 0xca;
export const ATA_STANDBY_IMMEDIATE = 0xe0;
export const ATA_IDLE_IMMEDIATE = 0xe1;
export const ATA_IDLE = 0xe3;
export const ATA_CHECK_POWER_MODE = 0xe5;
export const ATA_FLUSH_CACHE = 0xe7;
export const ATA_FLUSH_CACHE_EXT = 0xea;
export const ATA_IDENTIFY_DEVICE = 0xec;
export const ATA_SET_FEATURES = 0xef;

/** Sector size of ATA disks. */
export const SECTOR_SIZE = 512;
/** Signature in PxSIG of an ATA disk. */
export const SATA_DISK_SIGNATURE = 0x0000_0101;

const READS = new Set([ATA_READ_SECTORS, ATA_READ_SECTORS_EXT, ATA_READ_DMA_EXT, ATA_READ_DMA]);
const WRITES = new Set([
  ATA_WRITE_SECTORS,
  ATA_WRITE_SECTORS_EXT,
  ATA_WRITE_DMA_EXT,
  ATA_WRITE_DMA,
]);
const EXT = new Set([
  ATA_READ_SECTORS_EXT,
  ATA_READ_DMA_EXT,
  ATA_WRITE_SECTORS_EXT,
  ATA_WRITE_DMA_EXT,
  ATA_READ_VERIFY_EXT,
]);
const NO_DATA = new Set([
  ATA_INITIALIZE_DEVICE_PARAMETERS,
  ATA_SET_MULTIPLE,
  ATA_STANDBY_IMMEDIATE,
  ATA_IDLE_IMMEDIATE,
  ATA_IDLE,
  ATA_CHECK_POWER_MODE,
  ATA_SET_FEATURES,
]);

/** The LBA and sector count of a read, write or verify in a Register H2D FIS. */
export function fisRange(fis: Uint8Array, ext: boolean): { lba: number; count: number } {
  if (ext) {
    const lba = (fis[4] | (fis[5] << 8) | (fis[6] << 16)) +
      (fis[8] | (fis[9] << 8) | (fis[10] << 16)) * 2 ** 24;
    const count = fis[12] | (fis[13] << 8);
    return { lba, count: count === 0 ? 65536 : count };
  }
  const lba = (fis[4] | (fis[5] << 8) | (fis[6] << 16) | ((fis[7] & 0x0f) << 24)) >>> 0;
  return { lba, count: fis[12] === 0 ? 256 : fis[12] };
}

/** An ATA disk over a `Disk` backend. */
export class AtaDisk implements SataDevice {
  readonly signature = SATA_DISK_SIGNATURE;
  readonly #disk: Disk;
  readonly #identify: Uint8Array;
  readonly #sectors: number;
  readonly #log: (message: string) => void;

  /** A disk of `disk.size / 512` sectors (a partial last sector is not addressable). */
  constructor(disk: Disk, id: DriveIdentity, log: (message: string) => void = console.warn) {
    this.#disk = disk;
    this.#sectors = Math.floor(disk.size / SECTOR_SIZE);
    this.#identify = identifyDisk(this.#sectors, id);
    this.#log = log;
  }

  /** Number of addressable sectors. */
  get sectors(): number {
    return this.#sectors;
  }

  execute(fis: Uint8Array, _packet: Uint8Array, data: ScatterList): CommandResult {
    const command = fis[2];
    if (command === ATA_IDENTIFY_DEVICE) {
      return completed(data.copyIn(this.#identify), true);
    }
    if (READS.has(command) || WRITES.has(command)) {
      return this.#transfer(command, fisRange(fis, EXT.has(command)), WRITES.has(command), data);
    }
    if (command === ATA_READ_VERIFY || command === ATA_READ_VERIFY_EXT) {
      const { lba, count } = fisRange(fis, EXT.has(command));
      return lba + count <= this.#sectors ? completed() : aborted();
    }
    if (command === ATA_FLUSH_CACHE || command === ATA_FLUSH_CACHE_EXT) {
      try {
        this.#disk.flush();
        return completed();
      } catch (error) {
        return this.#ioError(error);
      }
    }
    if (NO_DATA.has(command)) return completed();
    // IDENTIFY PACKET DEVICE and PACKET included: a disk is not ATAPI.
    return aborted();
  }

  save(): VersionedState {
    return { version: 1 };
  }

  restore(state: unknown): void {
    new StateReader(state).version([1]);
  }

  #transfer(
    command: number,
    range: { lba: number; count: number },
    write: boolean,
    data: ScatterList,
  ): CommandResult {
    if (range.lba + range.count > this.#sectors) {
      this.#log(
        `ahci: command 0x${command.toString(16)} of ${range.count} sectors at LBA ${range.lba} ` +
          `is past the end of ${this.#disk.path} (${this.#sectors} sectors)`,
      );
      return aborted();
    }
    const buffers = data.take(range.count * SECTOR_SIZE);
    if (buffers === undefined) {
      this.#log(`ahci: the PRDT of command 0x${command.toString(16)} is shorter than its transfer`);
      return aborted();
    }
    if (write && this.#disk.readOnly) return aborted();
    try {
      if (write) this.#disk.write(range.lba * SECTOR_SIZE, buffers);
      else this.#disk.read(range.lba * SECTOR_SIZE, buffers);
    } catch (error) {
      return this.#ioError(error);
    }
    return completed(range.count * SECTOR_SIZE);
  }

  #ioError(error: unknown): CommandResult {
    if (!(error instanceof DiskError)) throw error;
    this.#log(`ahci: ${error.message}`);
    // UNC (uncorrectable data) tells the guest the medium failed, not the command.
    return { status: ATA_STATUS_OK | ATA_STATUS_ERR, error: 0x40, transferred: 0 };
  }
}
