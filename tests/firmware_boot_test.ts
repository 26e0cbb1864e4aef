/**
 * Firmware boot end to end: `denovisor run --firmware` starts Debian's SeaBIOS, which
 * boots the test boot sector (guests/firmware/boot_sector.S) from a virtio-blk disk or
 * from an El Torito CD-ROM on the AHCI controller. The boot sector prints through int 10h
 * (SeaBIOS's sercon copies it to the serial port) and straight to COM1, checks that the
 * BIOS's F segment is read-only (PAM), reads LBA 1 with int 13h and exits through the
 * debug-exit port with status 7.
 *
 * The same boot sector, disk and CD boot under QEMU with the same SeaBIOS (checked by
 * hand: qemu-system-x86_64 -bios bios.bin -fw_cfg name=etc/sercon-port,...). On the
 * nested KVM of the test hosts (CPL0 code emulated) each boot takes 5-7 s from start to
 * the debug-exit on a quiet host and 35-38 s with the load average at 25 (measured); the
 * limit of 120 s per boot is for a host busier still.
 */

import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";
import { kvmTest } from "./kvm_support.ts";
import { SECTOR_ONE, withImages } from "./firmware_support.ts";

/** One `run --firmware` to its debug-exit: 5-38 s here by load (see the module doc). */
const TIMEOUT_MS = 120_000;

function firmwareTest(name: string, fn: () => Promise<void>): void {
  kvmTest(name, fn, 2 * TIMEOUT_MS + 30_000); // the boot-order test boots twice
}

firmwareTest("run --firmware boots a boot sector from a virtio-blk disk", async () => {
  await withImages(async ({ disk }) => {
    const result = await denovisor(["run", "--firmware", "--disk", `${disk},format=raw`], {
      timeoutMs: TIMEOUT_MS,
    });
    assert.match(result.stdout, /SeaBIOS \(version/);
    assert.match(result.stdout, /boot sector: hello through int 10h/);
    assert.match(result.stdout, /boot sector: hello on COM1/);
    // SeaBIOS locked its shadow through the i440FX's PAM registers, and the lock holds.
    assert.match(result.stdout, /F segment: read-only/);
    assert.match(result.stdout, new RegExp(SECTOR_ONE));
    assert.equal(result.code, 7, result.stdout + result.stderr);
  });
});

firmwareTest("run --firmware boots the same boot sector from an AHCI (SATA) disk", async () => {
  await withImages(async ({ disk }) => {
    const result = await denovisor(["run", "--firmware", "--disk", `${disk},format=raw,bus=sata`], {
      timeoutMs: TIMEOUT_MS,
    });
    assert.match(result.stdout, /boot sector: hello on COM1/);
    assert.match(result.stdout, new RegExp(SECTOR_ONE), "int 13h read through AHCI");
    assert.equal(result.code, 7, result.stdout + result.stderr);
  });
});

firmwareTest("run --firmware --cdrom boots an El Torito CD from the AHCI CD-ROM", async () => {
  await withImages(async ({ iso }) => {
    const result = await denovisor(["run", "--firmware", "--cdrom", iso], {
      timeoutMs: TIMEOUT_MS,
    });
    assert.match(result.stdout, /Booting from DVD\/CD/);
    assert.match(result.stdout, /boot sector: hello on COM1/);
    assert.equal(result.code, 7, result.stdout + result.stderr);
  });
});

firmwareTest("--boot-order cdrom,disk boots the CD although the disk is bootable", async () => {
  await withImages(async ({ disk, iso }) => {
    const args = ["run", "--firmware", "--disk", `${disk},format=raw`, "--cdrom", iso];
    const cdFirst = await denovisor([...args, "--boot-order", "cdrom,disk"], {
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(cdFirst.code, 7, cdFirst.stdout + cdFirst.stderr);
    assert.doesNotMatch(cdFirst.stdout, new RegExp(SECTOR_ONE), "the CD's LBA 1 holds no text");
    const diskFirst = await denovisor([...args, "--boot-order", "disk,cdrom"], {
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(diskFirst.code, 7, diskFirst.stdout + diskFirst.stderr);
    assert.match(diskFirst.stdout, new RegExp(SECTOR_ONE));
  });
});

/** Starts `denovisor run ARGS`; `until(pattern)` reads its stdout until `pattern` is in it. */
function spawnRun(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../main.ts", import.meta.url).pathname, "run", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const watchdog = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS); // a hang fails
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  return {
    child,
    get text() {
      return text;
    },
    async until(pattern: RegExp): Promise<void> {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`output ended before ${pattern}:\n${text}`);
        text += decoder.decode(value, { stream: true });
      }
    },
    /** Reads to the end; the exit code and stderr. */
    async finish(): Promise<{ code: number; stderr: string }> {
      const rest = (async () => {
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          text += decoder.decode(r.value, { stream: true });
        }
      })();
      const [{ code }, stderr] = await Promise.all([
        child.status,
        new Response(child.stderr).text(),
        rest,
      ]);
      clearTimeout(watchdog);
      return { code, stderr };
    },
  };
}

firmwareTest(
  "run --firmware --save-on-signal saves SeaBIOS mid-POST; run --restore boots on to the boot sector",
  async () => {
    await withImages(async ({ disk }) => {
      const state = `${disk}.state`;
      const first = spawnRun([
        "--firmware",
        "--disk",
        `${disk},format=raw,bus=sata`,
        "--console",
        "stdio",
        "--save-on-signal",
        state,
      ]);
      await first.until(/SeaBIOS \(version/);
      first.child.kill("SIGTERM");
      const saved = await first.finish();
      assert.equal(saved.code, 0, saved.stderr);
      assert.match(saved.stderr, /saved to /);
      assert.doesNotMatch(first.text, /boot sector:/, "saved before the boot sector ran");

      const second = spawnRun(["--restore", state, "--console", "stdio"]);
      const restored = await second.finish();
      assert.equal(restored.code, 7, second.text + restored.stderr);
      assert.doesNotMatch(second.text, /SeaBIOS \(version/, "no second boot");
      assert.match(second.text, /boot sector: hello on COM1/);
      assert.match(second.text, /F segment: read-only/);
      assert.match(second.text, new RegExp(SECTOR_ONE), "int 13h read through the restored AHCI");
    });
  },
);
