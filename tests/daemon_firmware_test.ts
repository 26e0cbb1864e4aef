/**
 * Firmware boot through the daemon: a domain whose definition says
 * `"boot": {"firmware": "seabios", "order": [...]}`, with a SATA disk and a CD-ROM, is
 * defined and started with the real `denovisor define` and `denovisor start`, and SeaBIOS
 * boots the test boot sector (tests/firmware_support.ts) in its VMM. Saving one, or
 * snapshotting it with its memory, is refused with a message that says why (its chipset
 * is not part of the machine state), and the domain boots on untouched.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { SnapshotInfo } from "../manager/api_types.ts";
import { ApiClientError } from "../common/http/client.ts";
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

kvmTest(
  "daemon: save and snapshot of a firmware-booted domain are refused clearly (409), " +
    "nothing is left behind and the domain goes on",
  async () => {
    await withImages(async ({ disk }) => {
      const daemon = await TestDaemon.start();
      try {
        const api = daemon.client;
        await daemon.run({
          name: "fw",
          memory: 64,
          boot: { firmware: "seabios" },
          // Read-only: a snapshot needs pool volumes only for the disks it must capture.
          disks: [{ path: disk, format: "raw", bus: "sata", readOnly: true }],
        });
        const refused = async (call: Promise<unknown>) => {
          const error = await call.then(() => undefined, (e) => e);
          assert.ok(error instanceof ApiClientError, `refused: ${error}`);
          assert.equal(error.status, 409, error.message);
          assert.match(error.message, /Cannot save a firmware-booted machine/);
          assert.match(error.message, /save machines booted from a kernel/);
        };
        const file = join(daemon.dir, "fw.state");
        await refused(api.post("/v1/domains/fw/save", { file }));
        await refused(api.post("/v1/domains/fw/snapshots", { name: "s1" }));
        for (const path of [file, `${file}.mem`]) {
          assert.equal(await Deno.stat(path).then(() => true, () => false), false, path);
        }
        assert.deepEqual(await api.get<SnapshotInfo[]>("/v1/domains/fw/snapshots"), []);
        // The firmware goes on to the boot sector (the refusals left it running).
        await daemon.waitForLog("fw", SECTOR_ONE, BOOT_TIMEOUT_MS);
      } finally {
        await daemon.cleanup();
      }
    });
  },
  2 * BOOT_TIMEOUT_MS,
);
