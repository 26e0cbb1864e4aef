/**
 * Firmware boot through the daemon: a domain whose definition says
 * `"boot": {"firmware": "seabios", "order": [...]}`, with a SATA disk and a CD-ROM, is
 * defined and started with the real `denovisor define` and `denovisor start`, and SeaBIOS
 * boots the test boot sector (tests/firmware_support.ts) in its VMM. One saved in the
 * middle of SeaBIOS's POST and restored boots on to the boot sector, and so do one
 * reverted to a snapshot with memory taken there and a clone of that snapshot.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { DomainInfo, SaveResult, SnapshotInfo } from "../manager/api_types.ts";
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

/** The line a restored VMM logs first. */
const RESTORED = "denovisor vmm: restored from";

/** The domain's log (its VMM's output, across restores). */
async function log(daemon: TestDaemon, name: string): Promise<string> {
  return await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=10000`))
    .text();
}

/** How many times the domain's VMM was restored so far (a snapshot's resume is one too). */
async function restoreCount(daemon: TestDaemon, name: string): Promise<number> {
  return (await log(daemon, name)).split(RESTORED).length - 1;
}

/** Waits until every one of `patterns` is in the log after its `restores`-th restore line. */
async function waitAfterRestore(
  daemon: TestDaemon,
  name: string,
  restores: number,
  patterns: RegExp[],
): Promise<string> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await log(daemon, name);
    const parts = text.split(RESTORED);
    if (parts.length - 1 >= restores && patterns.every((p) => p.test(parts[restores]))) {
      return parts[restores];
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${patterns.join(", ")} did not follow restore ${restores} of ${name}:\n${text}`);
}

kvmTest(
  "daemon: a firmware-booted domain saved while SeaBIOS boots, and again in its boot sector, " +
    "is restored and boots on (chipset, PAM, RTC, AHCI and fw_cfg carried); a snapshot with memory " +
    "of it is taken, reverted to and cloned",
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
        // Early in SeaBIOS's POST: nothing of the boot sector has run yet.
        const early = await daemon.waitForLog("fw", "SeaBIOS (version", BOOT_TIMEOUT_MS);
        assert.doesNotMatch(early, /boot sector:/);
        const snapshot = await api.post<SnapshotInfo>("/v1/domains/fw/snapshots", { name: "s1" });
        assert.equal(snapshot.memory, true);

        const file = join(daemon.dir, "fw.state");
        const saved = await api.post<SaveResult>("/v1/domains/fw/save", { file });
        assert.equal(saved.kept, false);
        assert.equal((await daemon.info("fw")).state, "shutoff");
        const before = await log(daemon, "fw");
        assert.doesNotMatch(before, /boot sector:/, "saved before the boot sector ran");
        const restores = await restoreCount(daemon, "fw");
        const restored = await api.post<DomainInfo>("/v1/restore", { file });
        assert.equal(restored.state, "running");
        // SeaBIOS goes on after the restore: it finds the AHCI disk, locks the F segment
        // through PAM and hands over to the boot sector.
        const handedOver = await waitAfterRestore(daemon, "fw", restores + 1, [
          /Booting from Hard Disk/,
        ]);
        assert.doesNotMatch(handedOver, /SeaBIOS \(version/, "the restore did not boot anew");
        // Saved again as the boot sector starts (it waits 200 ms twice, with int 15h AH=86h on
        // the RTC): PAM is locked by now, so the restore must map the F segment read-only
        // again for the boot sector's write test, which comes after its first wait.
        const second = join(daemon.dir, "fw2.state");
        await api.post<SaveResult>("/v1/domains/fw/save", { file: second });
        assert.equal(
          (await api.post<DomainInfo>("/v1/restore", { file: second })).state,
          "running",
        );
        await waitAfterRestore(daemon, "fw", restores + 2, [new RegExp(SECTOR_ONE)]);
        const ended = await daemon.waitFor("fw", (info) => info.state === "shutoff", 30_000);
        assert.match(ended.lastEnd ?? "", /status 7/);
        const boot = (await log(daemon, "fw")).split(RESTORED).slice(restores + 1).join("");
        assert.match(boot, /boot sector: hello on COM1/);
        assert.match(boot, /F segment: read-only/);
        assert.doesNotMatch(boot, /F segment: writable/);

        // Back to the snapshot taken in POST: the boot goes on from there once more.
        const reverted = await api.post<DomainInfo>("/v1/domains/fw/snapshots/s1/revert", {});
        assert.equal(reverted.state, "running");
        await waitAfterRestore(daemon, "fw", restores + 3, [
          new RegExp(SECTOR_ONE),
          /F segment: read-only/,
        ]);
        const again = await daemon.waitFor("fw", (info) => info.state === "shutoff", 60_000);
        assert.match(again.lastEnd ?? "", /status 7/);

        // A clone of that snapshot (its read-only SATA disk shared) boots on from there too.
        const [clone] = await api.post<DomainInfo[]>("/v1/domains/fw/clone", {
          name: "fw-clone",
          snapshot: "s1",
          start: true,
        });
        assert.equal(clone.name, "fw-clone");
        await waitAfterRestore(daemon, "fw-clone", 1, [new RegExp(SECTOR_ONE)]);
        const cloned = await daemon.waitFor("fw-clone", (i) => i.state === "shutoff", 60_000);
        assert.match(cloned.lastEnd ?? "", /status 7/);
      } finally {
        await daemon.cleanup();
      }
    });
  },
  3 * BOOT_TIMEOUT_MS,
);
