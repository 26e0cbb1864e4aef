/**
 * Firmware boot through the daemon: a domain whose definition says
 * `"boot": {"firmware": "seabios", "order": [...]}`, with a SATA disk and a CD-ROM, is
 * defined and started with the real `denovisor define` and `denovisor start`, and SeaBIOS
 * boots the test boot sector (tests/firmware_support.ts) in its VMM.
 */

import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { SECTOR_ONE, withImages } from "./firmware_support.ts";
import { kvmTest } from "./kvm_support.ts";

/** SeaBIOS to the boot sector's exit: 5-38 s here by load (tests/firmware_boot_test.ts). */
const BOOT_TIMEOUT_MS = 120_000;

kvmTest("daemon: a domain with boot.firmware boots its SATA disk through SeaBIOS", async () => {
  await withImages(async ({ disk, iso }) => {
    const daemon = await TestDaemon.start();
    try {
      const file = `${daemon.dir}/fw.json`;
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          name: "fw",
          memory: 64,
          boot: { firmware: "seabios", order: ["disk", "cdrom"] },
          disks: [{ path: disk, format: "raw", bus: "sata" }],
          cdroms: [iso],
        }),
      );
      const socket = ["--socket", daemon.socket];
      const defined = await denovisor(["define", file, ...socket]);
      assert.equal(defined.code, 0, defined.stdout + defined.stderr);
      const started = await denovisor(["start", "fw", ...socket]);
      assert.equal(started.code, 0, started.stdout + started.stderr);
      assert.match(started.stdout, /^Domain 'fw' started$/m);

      const log = await daemon.waitForLog("fw", SECTOR_ONE, BOOT_TIMEOUT_MS);
      assert.match(log, /SeaBIOS \(version/);
      assert.match(log, /Booting from Hard Disk/, "order puts the disk before the CD");
      assert.match(log, /boot sector: hello through int 10h/);
      assert.match(log, /boot sector: hello on COM1/);
      // The boot sector ends the VM through the debug-exit port with status 7.
      const ended = await daemon.waitFor("fw", (info) => info.state === "shutoff", 30_000);
      assert.match(ended.lastEnd ?? "", /status 7/);
      assert.equal(ended.definition.boot && "firmware" in ended.definition.boot, true);
    } finally {
      await daemon.cleanup();
    }
  });
}, 2 * BOOT_TIMEOUT_MS);
