/**
 * An ATAPI CD-ROM drive behind an AHCI port: ATA PACKET carrying the MMC commands that
 * SeaBIOS's El Torito boot and Linux's sr driver send — TEST UNIT READY, REQUEST SENSE,
 * INQUIRY, READ CAPACITY, READ(10)/READ(12), MODE SENSE(10), GET CONFIGURATION, READ TOC,
 * GET EVENT STATUS NOTIFICATION, START STOP UNIT (eject) and PREVENT ALLOW MEDIUM
 * REMOVAL — over a read-only image of 2048-byte blocks. Media can be changed; the guest
 * then sees a UNIT ATTENTION once, as from a real drive.
 *
 * @module
 */

import { DenovisorError } from "../../../common/errors.ts";
import { StateReader, type VersionedState } from "../../../common/persist.ts";
import { type Disk, DiskError } from "../../../storage/disk.ts";
import { ATA_IDENTIFY_PACKET_DEVICE, ATA_PACKET } from "./ata_disk.ts";
import { type DriveIdentity, identifyCdrom } from "./identify.ts";
import {
  aborted,
  ATA_STATUS_ERR,
  ATA_STATUS_OK,
  type CommandResult,
  completed,
  type SataDevice,
  type ScatterList,
} from "./sata_device.ts";

/** Block size of CD-ROM media. */
export const CD_BLOCK_SIZE = 2048;
/** Signature in PxSIG of an ATAPI device. */
export const ATAPI_SIGNATURE = 0xeb14_0101;

const TEST_UNIT_READY = 0x00;
const REQUEST_SENSE = 0x03;
const INQUIRY = 0x12;
const START_STOP_UNIT = 0x1b;
const PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1e;
const READ_CAPACITY = 0x25;
const READ_10 = 0x28;
const READ_TOC = 0x43;
const GET_CONFIGURATION = 0x46;
const GET_EVENT_STATUS_NOTIFICATION = 0x4a;
const MODE_SENSE_10 = 0x5a;
const READ_12 = 0xa8;

/** Sense keys and additional sense codes (SPC). */
const NOT_READY = 0x02;
const MEDIUM_ERROR = 0x03;
const ILLEGAL_REQUEST = 0x05;
const UNIT_ATTENTION = 0x06;
const ASC_INVALID_OPCODE = 0x20;
const ASC_LBA_OUT_OF_RANGE = 0x21;
const ASC_INVALID_FIELD_IN_CDB = 0x24;
const ASC_MEDIUM_CHANGED = 0x28;
const ASC_MEDIUM_NOT_PRESENT = 0x3a;
const ASC_READ_ERROR = 0x11;

/** The image is not a CD-ROM image. */
export class CdromImageError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

interface Sense {
  key: number;
  asc: number;
}

/** An ATAPI CD-ROM drive, empty or holding one read-only image. */
export class AtapiCdrom implements SataDevice {
  readonly signature = ATAPI_SIGNATURE;
  readonly #identify: Uint8Array;
  readonly #log: (message: string) => void;
  #media: Disk | undefined;
  #sense: Sense = { key: 0, asc: 0 };
  #mediaChanged = false;
  #locked = false;

  constructor(
    media: Disk | undefined,
    id: DriveIdentity,
    log: (message: string) => void = console.warn,
  ) {
    this.#identify = identifyCdrom(id);
    this.#log = log;
    if (media !== undefined) checkImage(media);
    this.#media = media;
  }

  /** The image in the drive, if any. */
  get media(): Disk | undefined {
    return this.#media;
  }

  /** Whether the guest locked the tray (PREVENT ALLOW MEDIUM REMOVAL). */
  get locked(): boolean {
    return this.#locked;
  }

  /**
   * Replaces the media (undefined ejects it) and returns the previous one for the caller
   * to close. The guest sees UNIT ATTENTION, MEDIUM CHANGED on its next command.
   */
  changeMedia(media: Disk | undefined): Disk | undefined {
    if (media !== undefined) checkImage(media);
    const previous = this.#media;
    this.#media = media;
    this.#mediaChanged = true;
    return previous;
  }

  execute(fis: Uint8Array, packet: Uint8Array, data: ScatterList): CommandResult {
    if (fis[2] === ATA_IDENTIFY_PACKET_DEVICE) return completed(data.copyIn(this.#identify), true);
    if (fis[2] !== ATA_PACKET) return aborted(); // IDENTIFY DEVICE too: the host then knows it is ATAPI
    const opcode = packet[0];
    if (opcode !== REQUEST_SENSE && opcode !== INQUIRY && opcode !== GET_CONFIGURATION) {
      if (this.#mediaChanged && opcode !== GET_EVENT_STATUS_NOTIFICATION) {
        this.#mediaChanged = false;
        return this.#fail(UNIT_ATTENTION, ASC_MEDIUM_CHANGED);
      }
    }
    switch (opcode) {
      case TEST_UNIT_READY:
        return this.#media ? this.#ok() : this.#fail(NOT_READY, ASC_MEDIUM_NOT_PRESENT);
      case REQUEST_SENSE: {
        const sense = new Uint8Array(18);
        sense[0] = 0x70; // current error, fixed format
        sense[2] = this.#sense.key;
        sense[7] = 10;
        sense[12] = this.#sense.asc;
        this.#sense = { key: 0, asc: 0 };
        return completed(data.copyIn(sense.subarray(0, Math.min(18, packet[4]))));
      }
      case INQUIRY:
        return this.#reply(data, inquiry(), be16(packet, 3));
      case READ_CAPACITY: {
        if (!this.#media) return this.#fail(NOT_READY, ASC_MEDIUM_NOT_PRESENT);
        const reply = new Uint8Array(8);
        const view = new DataView(reply.buffer);
        view.setUint32(0, this.#blocks() - 1);
        view.setUint32(4, CD_BLOCK_SIZE);
        return this.#reply(data, reply, 8);
      }
      case READ_10:
        return this.#read(be32(packet, 2), be16(packet, 7), data);
      case READ_12:
        return this.#read(be32(packet, 2), be32(packet, 6), data);
      case MODE_SENSE_10:
        return this.#modeSense(packet, data);
      case GET_CONFIGURATION:
        return this.#reply(data, this.#configuration(), be16(packet, 7));
      case READ_TOC:
        return this.#readToc(packet, data);
      case GET_EVENT_STATUS_NOTIFICATION:
        return this.#eventStatus(packet, data);
      case START_STOP_UNIT:
        // LoEj with Start clear ejects, unless the guest locked the tray.
        if ((packet[4] & 0x03) === 0x02) {
          if (this.#locked) return this.#fail(ILLEGAL_REQUEST, 0x53); // medium removal prevented
          this.#media = undefined;
        }
        return this.#ok();
      case PREVENT_ALLOW_MEDIUM_REMOVAL:
        this.#locked = (packet[4] & 0x01) !== 0;
        return this.#ok();
      default:
        return this.#fail(ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    }
  }

  save(): VersionedState & {
    senseKey: number;
    asc: number;
    mediaChanged: boolean;
    locked: boolean;
  } {
    return {
      version: 1,
      senseKey: this.#sense.key,
      asc: this.#sense.asc,
      mediaChanged: this.#mediaChanged,
      locked: this.#locked,
    };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const sense = { key: reader.integer("senseKey", 0, 15), asc: reader.integer("asc", 0, 255) };
    const mediaChanged = reader.boolean("mediaChanged");
    const locked = reader.boolean("locked");
    this.#sense = sense;
    this.#mediaChanged = mediaChanged;
    this.#locked = locked;
  }

  #blocks(): number {
    return Math.floor((this.#media?.size ?? 0) / CD_BLOCK_SIZE);
  }

  #ok(): CommandResult {
    this.#sense = { key: 0, asc: 0 };
    return completed();
  }

  /** CHECK CONDITION: ERR in status, the sense key in the error register's high nibble. */
  #fail(key: number, asc: number): CommandResult {
    this.#sense = { key, asc };
    return { status: ATA_STATUS_OK | ATA_STATUS_ERR, error: key << 4, transferred: 0 };
  }

  #reply(data: ScatterList, reply: Uint8Array, allocation: number): CommandResult {
    this.#sense = { key: 0, asc: 0 };
    return completed(data.copyIn(reply.subarray(0, Math.min(reply.length, allocation))));
  }

  #read(lba: number, blocks: number, data: ScatterList): CommandResult {
    const media = this.#media;
    if (!media) return this.#fail(NOT_READY, ASC_MEDIUM_NOT_PRESENT);
    if (lba + blocks > this.#blocks()) return this.#fail(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    const buffers = data.take(blocks * CD_BLOCK_SIZE);
    if (buffers === undefined) {
      this.#log("ahci: the PRDT of an ATAPI read is shorter than its transfer");
      return this.#fail(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    }
    try {
      media.read(lba * CD_BLOCK_SIZE, buffers);
    } catch (error) {
      if (!(error instanceof DiskError)) throw error;
      this.#log(`ahci: ${error.message}`);
      return this.#fail(MEDIUM_ERROR, ASC_READ_ERROR);
    }
    this.#sense = { key: 0, asc: 0 };
    return completed(blocks * CD_BLOCK_SIZE);
  }

  #modeSense(packet: Uint8Array, data: ScatterList): CommandResult {
    const page = packet[2] & 0x3f;
    // Page 0x2a, CD capabilities: reads CD-R/RW, ejects, tray loading, lockable.
    const capabilities = Uint8Array.of(
      0x2a,
      0x12,
      0x03,
      0x00,
      0x71,
      0x60,
      0x29,
      0x00,
      0x02,
      0xc2,
      0x00,
      0x02,
      0x00,
      0x00,
      0x02,
      0xc2,
      0x00,
      0x00,
      0x00,
      0x00,
    ); // deno-fmt-ignore
    const recovery = Uint8Array.of(0x01, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00);
    const pages = page === 0x2a
      ? [capabilities]
      : page === 0x01
      ? [recovery]
      : page === 0x3f
      ? [recovery, capabilities]
      : undefined;
    if (pages === undefined) return this.#fail(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    const body = pages.reduce((n, p) => n + p.length, 0);
    const reply = new Uint8Array(8 + body);
    new DataView(reply.buffer).setUint16(0, reply.length - 2);
    let at = 8;
    for (const p of pages) {
      reply.set(p, at);
      at += p.length;
    }
    return this.#reply(data, reply, be16(packet, 7));
  }

  #configuration(): Uint8Array {
    // Header (current profile: CD-ROM when loaded) and feature 0, the profile list.
    const reply = new Uint8Array(16);
    const view = new DataView(reply.buffer);
    view.setUint32(0, reply.length - 4);
    view.setUint16(6, this.#media ? 0x0008 : 0);
    view.setUint16(8, 0x0000); // feature: profile list
    reply[10] = 0x03; // persistent, current
    reply[11] = 4;
    view.setUint16(12, 0x0008);
    reply[14] = this.#media ? 1 : 0; // current profile
    return reply;
  }

  #readToc(packet: Uint8Array, data: ScatterList): CommandResult {
    if (!this.#media) return this.#fail(NOT_READY, ASC_MEDIUM_NOT_PRESENT);
    const msf = (packet[1] & 0x02) !== 0;
    const format = packet[2] & 0x0f;
    const address = (lba: number) => (msf ? toMsf(lba) : lba);
    let reply: Uint8Array;
    if (format === 0) {
      // One data track, then the lead-out.
      reply = new Uint8Array(4 + 2 * 8);
      const view = new DataView(reply.buffer);
      view.setUint16(0, reply.length - 2);
      reply[2] = 1;
      reply[3] = 1;
      reply.set([0, 0x14, 1, 0], 4);
      view.setUint32(8, address(0));
      reply.set([0, 0x14, 0xaa, 0], 12);
      view.setUint32(16, address(this.#blocks()));
    } else if (format === 1) {
      // Session information: one session starting at track 1.
      reply = new Uint8Array(12);
      const view = new DataView(reply.buffer);
      view.setUint16(0, 10);
      reply[2] = 1;
      reply[3] = 1;
      reply.set([0, 0x14, 1, 0], 4);
      view.setUint32(8, address(0));
    } else {
      return this.#fail(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    }
    return this.#reply(data, reply, be16(packet, 7));
  }

  #eventStatus(packet: Uint8Array, data: ScatterList): CommandResult {
    // Only polled operation exists for ATAPI; the media class is the only one reported.
    if ((packet[1] & 0x01) === 0) return this.#fail(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    const reply = new Uint8Array(8);
    new DataView(reply.buffer).setUint16(0, 6);
    reply[2] = 0x04; // media class
    reply[3] = 0x10; // supported: media
    if (this.#mediaChanged) {
      reply[4] = this.#media ? 0x02 : 0x03; // new media, or media removal
      this.#mediaChanged = false;
    }
    reply[5] = this.#media ? 0x02 : 0x00; // media present
    return this.#reply(data, reply, be16(packet, 7));
  }
}

/** A CD-ROM image must be whole 2048-byte blocks and read-only. */
function checkImage(media: Disk): void {
  if (media.size === 0 || media.size % CD_BLOCK_SIZE !== 0) {
    throw new CdromImageError(
      `CD-ROM image ${media.path} has ${media.size} bytes, not a multiple of ${CD_BLOCK_SIZE}; ` +
        `give an ISO 9660 image`,
    );
  }
  if (!media.readOnly) {
    throw new CdromImageError(`CD-ROM image ${media.path} must be opened read-only`);
  }
}

function inquiry(): Uint8Array {
  const reply = new Uint8Array(36);
  reply[0] = 0x05; // CD/DVD device
  reply[1] = 0x80; // removable
  reply[2] = 0x05; // SPC-3
  reply[3] = 0x32; // response data format 2
  reply[4] = reply.length - 5;
  reply.set(new TextEncoder().encode("DENOVSR Virtual CD-ROM  1.0 "), 8);
  return reply;
}

function toMsf(lba: number): number {
  const frames = lba + 150; // the 2-second pregap
  return (Math.floor(frames / (75 * 60)) << 16) | (Math.floor(frames / 75) % 60 << 8) | frames % 75;
}

function be16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

function be32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}
