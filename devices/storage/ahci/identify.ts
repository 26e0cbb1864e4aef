/**
 * The 512-byte IDENTIFY DEVICE and IDENTIFY PACKET DEVICE answers (ATA8-ACS 7.16/7.17):
 * what SeaBIOS (src/hw/ahci.c) and Linux's libata read to size a disk and pick its
 * transfer modes.
 *
 * @module
 */

/** Identity strings of a drive. */
export interface DriveIdentity {
  /** At most 20 ASCII characters. */
  readonly serial: string;
  /** At most 40 ASCII characters. */
  readonly model: string;
}

const FIRMWARE_REVISION = "1.0";

/** IDENTIFY DEVICE for a fixed disk of `sectors` 512-byte sectors. */
export function identifyDisk(sectors: number, id: DriveIdentity): Uint8Array {
  const w = new Uint16Array(256);
  const cylinders = Math.min(16383, Math.floor(sectors / (16 * 63)));
  w[0] = 0x0040; // fixed device
  w[1] = cylinders;
  w[3] = 16;
  w[6] = 63;
  strings(w, id);
  w[47] = 0x8010; // READ/WRITE MULTIPLE: up to 16 sectors
  w[49] = 0x0300; // LBA and DMA
  w[53] = 0x0006; // words 64-70 and 88 are valid
  w[54] = cylinders;
  w[55] = 16;
  w[56] = 63;
  const chs = cylinders * 16 * 63;
  w[57] = chs & 0xffff;
  w[58] = chs >>> 16;
  const lba28 = Math.min(sectors, 0x0fff_ffff);
  w[60] = lba28 & 0xffff;
  w[61] = lba28 >>> 16;
  w[63] = 0x0007; // multiword DMA 0-2
  w[64] = 0x0003; // PIO 3-4
  w[65] =
    w[66] =
    w[67] =
    w[68] =
      120;
  w[76] = 0x0002; // SATA gen 1
  w[80] = 0x01f0; // ATA/ATAPI-4 to ATA8-ACS
  // Supported / enabled: write cache (82.5 / 85.5), LBA48 (83.10), FLUSH CACHE (83.12)
  // and FLUSH CACHE EXT (83.13); bit 14 of 83, 84 and 87 marks the words valid. The
  // write cache is announced so the guest sends flushes, which reach stable storage.
  w[82] = 0x0020;
  w[83] = 0x7400;
  w[84] = 0x4000;
  w[85] = 0x0020;
  w[86] = 0x3400;
  w[87] = 0x4000;
  w[88] = 0x007f; // UDMA 0-6 supported
  const big = BigInt(sectors);
  for (let i = 0; i < 4; i++) w[100 + i] = Number((big >> BigInt(16 * i)) & 0xffffn);
  w[106] = 0x4000; // one 512-byte logical sector per physical sector
  w[217] = 1; // non-rotating medium
  return bytes(w);
}

/** IDENTIFY PACKET DEVICE for an ATAPI CD-ROM drive. */
export function identifyCdrom(id: DriveIdentity): Uint8Array {
  const w = new Uint16Array(256);
  // ATAPI (10b << 14), CD-ROM (5 << 8), removable (bit 7), 50 us DRQ (bits 5-6: 10b), 12-byte packets.
  w[0] = 0x85c0;
  strings(w, id);
  w[49] = 0x0300; // LBA and DMA
  w[53] = 0x0006;
  w[63] = 0x0007;
  w[64] = 0x0003;
  w[65] =
    w[66] =
    w[67] =
    w[68] =
      120;
  w[76] = 0x0002;
  w[80] = 0x01f0;
  w[82] = 0x4010; // NOP, PACKET
  w[83] = 0x4000;
  w[84] = 0x4000;
  w[85] = 0x4010;
  w[86] = 0x0000;
  w[87] = 0x4000;
  w[88] = 0x007f;
  return bytes(w);
}

/** ATA strings: space-padded, two characters per word with the first in the high byte. */
function ataString(w: Uint16Array, first: number, words: number, text: string): void {
  const padded = text.replace(/[^\x20-\x7e]/g, " ").slice(0, words * 2).padEnd(words * 2, " ");
  for (let i = 0; i < words; i++) {
    w[first + i] = (padded.charCodeAt(2 * i) << 8) | padded.charCodeAt(2 * i + 1);
  }
}

function strings(w: Uint16Array, id: DriveIdentity): void {
  ataString(w, 10, 10, id.serial);
  ataString(w, 23, 4, FIRMWARE_REVISION);
  ataString(w, 27, 20, id.model);
}

function bytes(w: Uint16Array): Uint8Array {
  const out = new Uint8Array(512);
  const view = new DataView(out.buffer);
  w.forEach((value, i) => view.setUint16(2 * i, value, true));
  return out;
}
