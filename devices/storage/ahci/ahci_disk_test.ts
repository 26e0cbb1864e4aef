import assert from "node:assert/strict";
import { AhciDriver, ataFis, DATA, FB, MemoryDisk } from "./_test_support.ts";
import {
  GHC_AE,
  GHC_HR,
  GHC_IE,
  HBA_CAP,
  HBA_GHC,
  HBA_IS,
  HBA_PI,
  HBA_VS,
} from "./ahci_controller.ts";
import {
  ATA_FLUSH_CACHE_EXT,
  ATA_IDENTIFY_DEVICE,
  ATA_IDENTIFY_PACKET_DEVICE,
  ATA_READ_DMA,
  ATA_READ_DMA_EXT,
  ATA_WRITE_DMA_EXT,
  AtaDisk,
  SATA_DISK_SIGNATURE,
} from "./ata_disk.ts";
import { IS_DHRS, IS_PSS, IS_TFES, PX_CMD, PX_IE, PX_SIG, PX_SSTS, PX_TFD } from "./ahci_port.ts";

const ID = { serial: "DNV0001", model: "Denovisor SATA disk" };

function diskDriver(sectors = 2048) {
  const image = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) image.fill(s & 0xff, s * 512, s * 512 + 512);
  const disk = new MemoryDisk(image);
  const driver = new AhciDriver([new AtaDisk(disk, ID), undefined]);
  return { disk, driver };
}

Deno.test("the HBA reports AHCI 1.3, two ports, 64-bit addressing and AHCI-only mode", () => {
  const { driver } = diskDriver();
  assert.equal(driver.readl(HBA_VS), 0x10300);
  assert.equal(driver.readl(HBA_PI), 0b11);
  const cap = driver.readl(HBA_CAP);
  assert.equal(cap & 0x1f, 1, "NP = ports - 1");
  assert.ok(cap & (1 << 31), "S64A");
  assert.equal((cap >>> 8) & 0x1f, 31, "32 command slots");
  driver.writel(HBA_GHC, GHC_HR);
  assert.equal(driver.readl(HBA_GHC), GHC_AE >>> 0, "reset completes at once, AE stays");
  assert.equal(driver.readl(driver.port(0, PX_SIG)), SATA_DISK_SIGNATURE);
  assert.equal(driver.readl(driver.port(0, PX_SSTS)) & 0xf, 3, "device present");
  assert.equal(driver.readl(driver.port(1, PX_SSTS)) & 0xf, 0, "empty port");
  assert.equal(driver.readl(driver.port(0, PX_TFD)) & 0x88, 0, "not busy");
});

Deno.test("IDENTIFY DEVICE returns the size and model; IDENTIFY PACKET DEVICE aborts", () => {
  const { driver } = diskDriver(4096);
  driver.start(0);
  const packet = driver.issue(0, {
    fis: ataFis(ATA_IDENTIFY_PACKET_DEVICE),
    prds: [{ address: DATA, length: 512 }],
  });
  assert.ok(packet.is & IS_TFES);
  // SeaBIOS probes every port with IDENTIFY PACKET DEVICE and waits for DHRS or PSS only.
  assert.ok(packet.is & IS_DHRS, "the error's D2H FIS raises DHRS");
  assert.equal((packet.tfd >> 8) & 0x04, 0x04, "ABRT");
  driver.recover(0);
  const out = driver.issue(0, {
    fis: ataFis(ATA_IDENTIFY_DEVICE),
    prds: [{ address: DATA, length: 512 }],
  });
  assert.equal(out.ci, 0);
  assert.equal(out.is & (IS_PSS | IS_DHRS), IS_PSS | IS_DHRS);
  assert.equal(out.tfd & 0xff, 0x50);
  assert.equal(out.prdbc, 512);
  const pio = driver.memory.read(FB + 0x20, 20);
  assert.equal(pio[0], 0x5f, "PIO Setup FIS posted");
  assert.equal(pio[2] & 0x41, 0x40, "SeaBIOS reads success from the PIO Setup status");
  const words = new Uint16Array(driver.memory.read(DATA, 512).buffer);
  assert.equal(Number(words[100]) + Number(words[101]) * 65536, 4096, "LBA48 sectors");
  assert.ok(words[83] & (1 << 10), "LBA48 supported");
  const model = String.fromCharCode(
    ...[...words.subarray(27, 47)].flatMap((w) => [w >> 8, w & 0xff]),
  );
  assert.equal(model.trim(), ID.model);
});

Deno.test("READ DMA EXT scatters sectors across PRDs; WRITE DMA EXT and FLUSH reach the disk", () => {
  const { disk, driver } = diskDriver();
  driver.start(0);
  const read = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 7, 3),
    prds: [{ address: DATA, length: 1024 }, { address: DATA + 0x8000, length: 512 }],
  });
  assert.equal(read.ci, 0);
  assert.equal(read.prdbc, 1536);
  assert.equal(driver.memory.readU8(DATA), 7);
  assert.equal(driver.memory.readU8(DATA + 1023), 8);
  assert.equal(driver.memory.readU8(DATA + 0x8000), 9);
  driver.memory.fill(DATA, 1024, 0xab);
  const write = driver.issue(0, {
    fis: ataFis(ATA_WRITE_DMA_EXT, 100, 2),
    prds: [{ address: DATA, length: 1024 }],
    write: true,
  });
  assert.equal(write.ci, 0);
  assert.ok(disk.bytes.subarray(100 * 512, 102 * 512).every((b) => b === 0xab));
  assert.equal(disk.bytes[102 * 512], 102);
  driver.issue(0, { fis: ataFis(ATA_FLUSH_CACHE_EXT) });
  assert.equal(disk.flushes, 1);
  // 28-bit READ DMA, as SeaBIOS issues for low LBAs: a count of 0 means 256 sectors.
  const low = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA, 1, 1),
    prds: [{ address: DATA, length: 512 }],
  });
  assert.equal(low.ci, 0);
  assert.equal(driver.memory.readU8(DATA), 1);
});

Deno.test("INTx follows PxIS & PxIE under GHC.IE, and clearing PxIS lowers it", () => {
  const { driver } = diskDriver();
  driver.start(0);
  driver.writel(driver.port(0, PX_IE), IS_DHRS);
  driver.writel(HBA_GHC, GHC_IE);
  driver.issue(0, { fis: ataFis(ATA_READ_DMA_EXT, 0, 1), prds: [{ address: DATA, length: 512 }] });
  assert.equal(driver.readl(HBA_IS), 1);
  assert.equal(driver.intx, true);
  driver.writel(driver.port(0, 0x10), IS_DHRS);
  assert.equal(driver.intx, false);
});

Deno.test("clearing ST drops issued commands and CR follows ST", () => {
  const { driver } = diskDriver();
  driver.start(0);
  assert.ok(driver.readl(driver.port(0, PX_CMD)) & (1 << 15), "CR set while running");
  driver.writel(driver.port(0, PX_CMD), 0);
  assert.equal(driver.readl(driver.port(0, PX_CMD)) & (1 << 15), 0);
});

Deno.test("save and restore carry the port registers; a bad state changes nothing", () => {
  const { driver } = diskDriver();
  driver.start(0);
  driver.writel(driver.port(0, PX_IE), 0x1234);
  const state = JSON.parse(JSON.stringify(driver.hba.save()));
  const other = diskDriver().driver;
  other.hba.restore(state);
  assert.equal(other.readl(other.port(0, PX_IE)), 0x1234);
  assert.equal(other.readl(other.port(0, 0)), 0x1_0000);
  const bad = structuredClone(state);
  bad.ports[1].ie = -1;
  assert.throws(() => other.hba.restore(bad), /ports\[1\]\.ie/);
  assert.equal(other.readl(other.port(0, PX_IE)), 0x1234, "port 0 rolled back");
  assert.throws(() => other.hba.restore({ ...state, ports: [state.ports[0]] }), /2 ports|1 ports/);
});
