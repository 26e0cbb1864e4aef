import assert from "node:assert/strict";
import { RawDisk } from "../../../storage/raw_disk.ts";
import { AhciDriver, ataFis, DATA, MemoryDisk } from "./_test_support.ts";
import { ATA_IDENTIFY_DEVICE, ATA_IDENTIFY_PACKET_DEVICE, ATA_PACKET } from "./ata_disk.ts";
import { ATAPI_SIGNATURE, AtapiCdrom, CD_BLOCK_SIZE } from "./atapi_cdrom.ts";
import { IS_TFES, PX_CMD, PX_SIG } from "./ahci_port.ts";

const ID = { serial: "CD0001", model: "Denovisor DVD-ROM" };

function hasXorriso(): boolean {
  try {
    new Deno.Command("xorriso", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

/** An El Torito ISO made by xorriso: a no-emulation boot image and a text file. */
async function makeIso(dir: string): Promise<string> {
  await Deno.mkdir(`${dir}/tree`);
  const boot = new Uint8Array(2048).fill(0x90);
  boot[510] = 0x55;
  boot[511] = 0xaa;
  await Deno.writeFile(`${dir}/tree/boot.bin`, boot);
  await Deno.writeTextFile(`${dir}/tree/hello.txt`, "hello from the CD-ROM\n");
  const iso = `${dir}/test.iso`;
  const out = await new Deno.Command("xorriso", {
    args: [
      "-as",
      "mkisofs",
      "-quiet",
      "-o",
      iso,
      "-b",
      "boot.bin",
      "-no-emul-boot",
      "-boot-load-size",
      "4",
      `${dir}/tree`,
    ],
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return iso;
}

/** An ATA PACKET command with a 12-byte CDB, reading into DATA. */
function packet(driver: AhciDriver, cdb: number[], length = 2048) {
  const fis = ataFis(ATA_PACKET);
  fis[3] = 1; // features: DMA
  return driver.issue(0, {
    fis,
    packet: cdb.concat(new Array(16 - cdb.length).fill(0)),
    prds: [{ address: DATA, length }],
  });
}

function senseOf(driver: AhciDriver): number[] {
  driver.recover(0);
  packet(driver, [0x03, 0, 0, 0, 18, 0], 18);
  const sense = driver.memory.read(DATA, 18);
  return [sense[2] & 0x0f, sense[12]];
}

Deno.test({
  name: "an xorriso El Torito ISO reads through ATAPI READ(10) and READ(12) as SeaBIOS boots it",
  ignore: !hasXorriso(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "atapi-" });
    try {
      const iso = await makeIso(dir);
      const media = RawDisk.open(iso, { readOnly: true });
      const isoBytes = await Deno.readFile(iso);
      const driver = new AhciDriver([new AtapiCdrom(media, ID, () => {})]);
      assert.equal(driver.readl(driver.port(0, PX_SIG)), ATAPI_SIGNATURE);
      assert.ok(driver.readl(driver.port(0, PX_CMD)) & (1 << 24), "PxCMD.ATAPI");
      driver.start(0);
      // SeaBIOS probes with IDENTIFY PACKET DEVICE first: a CD-ROM (type 5), removable.
      const id = driver.issue(0, {
        fis: ataFis(ATA_IDENTIFY_PACKET_DEVICE),
        prds: [{ address: DATA, length: 512 }],
      });
      assert.equal(id.ci, 0);
      const word0 = driver.memory.readU16(DATA);
      assert.equal((word0 >> 8) & 0x1f, 5);
      assert.ok(word0 & 0x80);
      const ata = driver.issue(0, {
        fis: ataFis(ATA_IDENTIFY_DEVICE),
        prds: [{ address: DATA, length: 512 }],
      });
      assert.ok(ata.is & IS_TFES, "IDENTIFY DEVICE aborts on ATAPI");
      driver.recover(0);
      assert.equal(packet(driver, [0x00]).ci, 0, "TEST UNIT READY");
      packet(driver, [0x12, 0, 0, 0, 36, 0], 36);
      assert.equal(driver.memory.readU8(DATA), 0x05, "INQUIRY: CD/DVD device");
      packet(driver, [0x25], 8);
      const blocks = isoBytes.length / CD_BLOCK_SIZE;
      assert.equal(new DataView(driver.memory.read(DATA, 8).buffer).getUint32(0), blocks - 1);
      // READ(10) of the volume descriptors: the primary one, then El Torito's boot record.
      const read = packet(driver, [0x28, 0, 0, 0, 0, 16, 0, 0, 2], 4096);
      assert.equal(read.ci, 0);
      assert.equal(read.prdbc, 4096);
      assert.equal(new TextDecoder().decode(driver.memory.read(DATA + 1, 5)), "CD001");
      assert.equal(
        new TextDecoder().decode(driver.memory.read(DATA + 2048 + 7, 23)),
        "EL TORITO SPECIFICATION",
      );
      const catalog = driver.memory.readU32(DATA + 2048 + 0x47);
      packet(driver, [0xa8, 0, ...be32(catalog), 0, 0, 0, 1], 2048);
      const entry = driver.memory.read(DATA + 32, 32); // initial/default entry
      assert.equal(entry[0], 0x88, "bootable");
      const bootLba = new DataView(entry.buffer).getUint32(8, true);
      packet(driver, [0x28, 0, ...be32(bootLba), 0, 0, 1], 2048);
      assert.deepEqual([...driver.memory.read(DATA + 510, 2)], [0x55, 0xaa]);
      assert.deepEqual(
        driver.memory.read(DATA, 2048),
        isoBytes.subarray(bootLba * 2048, bootLba * 2048 + 2048),
      );
      // Past the end: CHECK CONDITION, ILLEGAL REQUEST / LBA OUT OF RANGE.
      const past = packet(driver, [0x28, 0, ...be32(blocks), 0, 0, 1], 2048);
      assert.ok(past.is & IS_TFES);
      assert.equal((past.tfd >> 12) & 0xf, 5, "sense key in the error register");
      assert.deepEqual(senseOf(driver), [5, 0x21]);
      media.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("READ TOC, GET CONFIGURATION, MODE SENSE and event status describe one data track", () => {
  const driver = new AhciDriver([
    new AtapiCdrom(new MemoryDisk(new Uint8Array(100 * 2048), true), ID),
  ]);
  driver.start(0);
  packet(driver, [0x43, 0, 0, 0, 0, 0, 0, 0, 20], 20);
  const toc = driver.memory.read(DATA, 20);
  assert.deepEqual([toc[2], toc[3], toc[6], toc[14]], [1, 1, 1, 0xaa]);
  assert.equal(new DataView(toc.buffer).getUint32(16), 100, "lead-out at the last block");
  packet(driver, [0x43, 2, 0, 0, 0, 0, 0, 0, 20], 20); // MSF
  assert.equal(
    new DataView(driver.memory.read(DATA, 20).buffer).getUint32(8),
    0x000200,
    "00:02:00",
  );
  packet(driver, [0x46, 0, 0, 0, 0, 0, 0, 0, 16], 16);
  assert.equal(driver.memory.readU8(DATA + 7), 0x08, "current profile CD-ROM");
  packet(driver, [0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28], 28);
  assert.equal(driver.memory.readU8(DATA + 8), 0x2a);
  const bad = packet(driver, [0x5a, 0, 0x1c, 0, 0, 0, 0, 0, 28], 28);
  assert.ok(bad.is & IS_TFES);
  assert.deepEqual(senseOf(driver), [5, 0x24]);
  packet(driver, [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8], 8);
  assert.equal(driver.memory.readU8(DATA + 5), 0x02, "media present");
  const unknown = packet(driver, [0xbd]);
  assert.ok(unknown.is & IS_TFES);
  assert.deepEqual(senseOf(driver), [5, 0x20]);
});

Deno.test("media change shows once as UNIT ATTENTION; eject empties the drive unless locked", () => {
  const cdrom = new AtapiCdrom(undefined, ID, () => {});
  const driver = new AhciDriver([cdrom]);
  driver.start(0);
  const empty = packet(driver, [0x00]);
  assert.ok(empty.is & IS_TFES);
  assert.deepEqual(senseOf(driver), [2, 0x3a], "NOT READY, MEDIUM NOT PRESENT");
  cdrom.changeMedia(new MemoryDisk(new Uint8Array(4096), true));
  assert.ok(packet(driver, [0x00]).is & IS_TFES);
  assert.deepEqual(senseOf(driver), [6, 0x28], "UNIT ATTENTION, MEDIUM CHANGED");
  assert.equal(packet(driver, [0x00]).ci, 0, "ready after the attention");
  packet(driver, [0x1e, 0, 0, 0, 1]); // prevent removal
  assert.ok(packet(driver, [0x1b, 0, 0, 0, 0x02]).is & IS_TFES, "locked tray refuses eject");
  driver.recover(0);
  packet(driver, [0x1e, 0, 0, 0, 0]);
  assert.equal(packet(driver, [0x1b, 0, 0, 0, 0x02]).ci, 0);
  assert.equal(cdrom.media, undefined);
});

Deno.test("a CD-ROM image that is not whole 2048-byte blocks, or writable, is refused", () => {
  assert.throws(
    () => new AtapiCdrom(new MemoryDisk(new Uint8Array(3000), true), ID),
    /multiple of 2048/,
  );
  assert.throws(() => new AtapiCdrom(new MemoryDisk(new Uint8Array(2048), false), ID), /read-only/);
  const cdrom = new AtapiCdrom(undefined, ID);
  assert.throws(
    () => cdrom.changeMedia(new MemoryDisk(new Uint8Array(0), true)),
    /multiple of 2048/,
  );
});

function be32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}
