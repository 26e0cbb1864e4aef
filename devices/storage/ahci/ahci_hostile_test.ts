import assert from "node:assert/strict";
import { AhciDriver, ataFis, CLB, DATA, MemoryDisk, RAM_SIZE } from "./_test_support.ts";
import { ATA_READ_DMA_EXT, ATA_WRITE_DMA_EXT, AtaDisk } from "./ata_disk.ts";
import { IS_TFES, PX_CI, PX_CLB, PX_CLBU, PX_TFD } from "./ahci_port.ts";

function setup() {
  const disk = new MemoryDisk(new Uint8Array(64 * 512).fill(0x5a));
  const driver = new AhciDriver([new AtaDisk(disk, { serial: "S", model: "M" })]);
  driver.start(0);
  return { disk, driver };
}

/** The command failed with a task-file error, ABRT, and the port still works after recovery. */
function assertFailedAndRecovers(driver: AhciDriver, outcome: { is: number; tfd: number }): void {
  assert.ok(outcome.is & IS_TFES, "task-file error");
  assert.equal((outcome.tfd >> 8) & 0x04, 0x04, "ABRT");
  driver.recover(0);
  const good = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 0, 1),
    prds: [{ address: DATA, length: 512 }],
  });
  assert.equal(good.ci, 0);
  assert.equal(good.tfd & 0xff, 0x50);
}

Deno.test("a PRD pointing outside guest RAM fails the command without a partial copy", () => {
  const { driver } = setup();
  driver.memory.fill(DATA, 512, 0x11);
  const out = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 0, 2),
    prds: [{ address: DATA, length: 512 }, { address: RAM_SIZE - 256, length: 512 }],
  });
  assert.equal(driver.memory.readU8(DATA), 0x11, "nothing written before the check failed");
  assertFailedAndRecovers(driver, out);
  for (const address of [2n ** 40n, 2n ** 63n, 0xffff_ffff_ffff_fe00n]) {
    const far = driver.issue(0, {
      fis: ataFis(ATA_READ_DMA_EXT, 0, 1),
      prds: [{ address, length: 512 }],
    });
    assertFailedAndRecovers(driver, far);
  }
});

Deno.test("a PRDT shorter than the transfer, or none, fails the command", () => {
  const { driver } = setup();
  const short = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 0, 8),
    prds: [{ address: DATA, length: 512 }],
  });
  assertFailedAndRecovers(driver, short);
  const none = driver.issue(0, { fis: ataFis(ATA_WRITE_DMA_EXT, 0, 1), write: true });
  assertFailedAndRecovers(driver, none);
});

Deno.test("a huge sector count or an LBA past the end fails, not the VMM", () => {
  const { driver } = setup();
  const huge = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 0, 0), // 0 = 65536 sectors
    prds: [{ address: DATA, length: 4 << 20 }],
  });
  assertFailedAndRecovers(driver, huge);
  const past = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 2 ** 47, 1),
    prds: [{ address: DATA, length: 512 }],
  });
  assertFailedAndRecovers(driver, past);
});

Deno.test("a command list or table outside RAM, or a bad FIS, fails the command", () => {
  const { driver } = setup();
  // A PRDT length of 65535 entries running off the end of RAM.
  driver.memory.writeU32(CLB, 5 | (0xffff << 16));
  driver.memory.writeU64(CLB + 8, RAM_SIZE - 0x1000);
  driver.writel(driver.port(0, PX_CI), 1);
  assert.ok(driver.readl(driver.port(0, 0x10)) & IS_TFES);
  driver.recover(0);
  // Not a Register H2D FIS.
  const bogus = driver.issue(0, { fis: [0x34, 0x80, ATA_READ_DMA_EXT, ...new Array(17).fill(0)] });
  assertFailedAndRecovers(driver, bogus);
  // The command list itself moved above RAM.
  driver.writel(driver.port(0, PX_CLBU), 0xffff_ffff);
  driver.writel(driver.port(0, PX_CI), 1);
  assert.ok(driver.readl(driver.port(0, PX_TFD)) & 1, "error in TFD");
  assert.ok(driver.logs.some((m) => m.includes("outside guest RAM")));
  driver.writel(driver.port(0, PX_CLBU), 0);
  driver.writel(driver.port(0, PX_CLB), CLB);
  assertFailedAndRecovers(driver, { is: IS_TFES, tfd: 0x0451 });
});

Deno.test("a failing slot stays issued in PxCI until the driver clears ST", () => {
  const { driver } = setup();
  // Slot 3 completes; slot 5 reads off the disk and stays issued until recovery.
  driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 0, 1),
    prds: [{ address: DATA, length: 512 }],
    slot: 3,
  });
  const out = driver.issue(0, {
    fis: ataFis(ATA_READ_DMA_EXT, 1000, 1),
    prds: [{ address: DATA, length: 512 }],
    slot: 5,
  });
  assert.equal(out.ci, 1 << 5);
  assertFailedAndRecovers(driver, out);
  assert.equal(driver.readl(driver.port(0, PX_CI)), 0);
});
