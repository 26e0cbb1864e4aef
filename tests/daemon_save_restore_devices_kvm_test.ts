/**
 * Save and restore through the daemon of guests busy with their devices:
 * - guests/virtio_blk_log.c writes a ring of checksummed slots on its virtio-blk disk with
 *   4 requests in flight, behind a rate limit (so chains are often held by the device when
 *   the save comes), and reads the ring back every round: it is saved and restored three
 *   times mid-run, on PCI with MSI-X and on MMIO; the guest finds every acknowledged write
 *   in its slot and none done twice, and the host checks the image after the last run;
 * - guests/virtio_net.c (echo=1) answers each host frame on a tap: frames go both ways
 *   before the save and after the restore;
 * - guests/virtio_console.c echoes lines of the virtio console before and after.
 *
 * The disk test was checked against two broken saves (devices/virtio/queue.ts saveState):
 * one that forgot the chains in flight (the guest waited for a lost write: failed at
 * restore 2 on both transports) and one that served the last completed chain again (the
 * guest printed "blklog: FAIL write 40 failed with status 238": failed at restore 1).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { DomainInfo, SaveResult } from "../manager/api_types.ts";
import { attachConsole } from "../vmm/vmm_client.ts";
import { PacketSocket } from "../devices/net/testing/packet_socket.ts";
import { guest } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";

const LOG_WAIT_MS = 60_000;
const RESTORED = "denovisor vmm: restored from";
const SLOTS = 16;
const SLOT_BYTES = 4096;

async function log(daemon: TestDaemon, name: string): Promise<string> {
  return await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=10000`))
    .text();
}

/**
 * Waits until `pattern` matches the log after its `restores`-th restore line; fails at
 * once when `failure` shows up in the log.
 */
async function waitAfterRestore(
  daemon: TestDaemon,
  name: string,
  restores: number,
  pattern: RegExp,
  failure = /blklog: FAIL/,
): Promise<string> {
  const deadline = Date.now() + LOG_WAIT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await log(daemon, name);
    if (failure.test(text)) throw new Error(`the guest ${name} failed:\n${text}`);
    const parts = text.split(RESTORED);
    if (parts.length - 1 === restores && pattern.test(parts[restores])) return text;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${pattern} did not follow restore ${restores} of ${name}:\n${text}`);
}

async function saveAndRestore(daemon: TestDaemon, name: string, file: string): Promise<void> {
  const saved = await daemon.client.post<SaveResult>(`/v1/domains/${name}/save`, { file });
  assert.equal(saved.kept, false);
  assert.equal((await daemon.info(name)).state, "shutoff");
  const restored = await daemon.client.post<DomainInfo>("/v1/restore", { file });
  assert.equal(restored.state, "running");
}

function rounds(text: string): number[] {
  return [...text.matchAll(/blklog: round (\d+) ok/g)].map((m) => Number(m[1]));
}

/**
 * The host's view of the ring: every slot holds an intact record of a write of that slot
 * at least as new as round `round` wrote (as guests/virtio_blk_log.c lays it out).
 */
function checkRing(image: Uint8Array, round: number): void {
  const MAGIC = 0x676f6c6b6c62n;
  for (let slot = 0; slot < SLOTS; slot++) {
    const view = new DataView(image.buffer, image.byteOffset + slot * SLOT_BYTES, SLOT_BYTES);
    const words = SLOT_BYTES / 8;
    let sum = 0xcbf29ce484222325n;
    for (let i = 0; i < words - 1; i++) {
      sum = BigInt.asUintN(64, (sum ^ view.getBigUint64(i * 8, true)) * 0x100000001b3n);
    }
    assert.equal(view.getBigUint64(0, true), MAGIC, `slot ${slot}: magic`);
    assert.equal(view.getBigUint64((words - 1) * 8, true), sum, `slot ${slot}: checksum`);
    const write = Number(view.getBigUint64(8, true));
    assert.equal(Number(view.getBigUint64(16, true)), slot, `slot ${slot}: its slot`);
    assert.equal(write % SLOTS, slot, `slot ${slot} holds write ${write}`);
    assert.ok(write >= (round - 1) * SLOTS + slot, `slot ${slot}: write ${write} is older`);
  }
}

for (const [transport, irq] of [["pci", "msix"], ["mmio", "irq"]] as const) {
  kvmTest(
    `daemon: a guest writing its disk on ${transport} (${irq}) is saved mid-write and ` +
      "restored 3 times: every acknowledged write is on disk, none done twice",
    async () => {
      const daemon = await TestDaemon.start();
      try {
        const image = join(daemon.dir, "log.raw");
        await Deno.writeFile(image, new Uint8Array(1024 * 1024));
        await daemon.run({
          name: "blk",
          boot: { kernel: guest("virtio_blk_log"), cmdline: `transport=${transport} irq=${irq}` },
          memory: 32,
          disks: [{ path: image, format: "raw", transport, rateLimit: "ops=60" }],
        });
        await daemon.waitForLog("blk", "blklog: round 2 ok", LOG_WAIT_MS);
        for (let restore = 1; restore <= 3; restore++) {
          await saveAndRestore(daemon, "blk", join(daemon.dir, `blk-${restore}.state`));
          const before = Math.max(...rounds((await log(daemon, "blk")).split(RESTORED)[0]));
          // Two whole rounds after the restore: each one read the ring back and checked it.
          const text = await waitAfterRestore(
            daemon,
            "blk",
            restore,
            new RegExp(`blklog: round (\\d+) ok[^]*blklog: round \\d+ ok`),
          );
          assert.doesNotMatch(text, /blklog: FAIL/, text);
          const after = rounds(text.split(RESTORED)[restore]);
          assert.ok(after[0] > before, `restore ${restore}: round ${after[0]} after ${before}`);
          // No second boot: the guest said where it writes once.
          assert.equal(text.split("blklog: writing").length - 1, 1, text);
        }
        const last = Math.max(...rounds(await log(daemon, "blk")));
        await daemon.client.post("/v1/domains/blk/destroy");
        checkRing(await Deno.readFile(image), last);
        assert.doesNotMatch(await log(daemon, "blk"), /blklog: FAIL/);
      } finally {
        await daemon.cleanup();
      }
    },
  );
}

kvmTest("daemon: a virtio-net guest exchanges frames with the host after a restore", async () => {
  const tap = `dvs${crypto.getRandomValues(new Uint16Array(1))[0].toString(16)}`;
  const ip = (...args: string[]) => new Deno.Command("ip", { args }).output();
  assert.equal((await ip("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")).code, 0);
  const daemon = await TestDaemon.start();
  try {
    assert.equal((await ip("link", "set", tap, "up")).code, 0);
    using host = new PacketSocket(tap);
    const mac = [0x52, 0x54, 0x00, 0xdd, 0x01, 0x02];
    const macText = mac.map((b) => b.toString(16).padStart(2, "0")).join(":");
    const isTest = (f: Uint8Array) => f.length >= 14 && f[12] === 0x88 && f[13] === 0xb5;
    const text = (f: Uint8Array) => new TextDecoder().decode(f.subarray(14)).replace(/\0+$/, "");
    const exchange = async (index: number) => {
      const payload = new TextEncoder().encode(`host-frame-${index}`);
      const frame = new Uint8Array(60);
      frame.set([...mac, 0x02, 0, 0, 0, 0, 0x99, 0x88, 0xb5]);
      frame.set(payload, 14);
      host.send(frame);
      const answer = await host.receiveMatching(isTest, 30_000);
      assert.ok(answer, `an answer to host frame ${index}`);
      assert.deepEqual([...answer.subarray(6, 12)], mac);
      assert.equal(text(answer), `denovisor-frame-${1000 + index}`);
    };
    await daemon.run({
      name: "net",
      boot: {
        kernel: guest("virtio_net"),
        cmdline: "transport=pci irq=msix tx=2 rx=4 echo=1 timeout=600",
      },
      memory: 32,
      nics: [{ tap, mac: macText, transport: "pci" }],
    });
    for (let i = 0; i < 2; i++) {
      const frame = await host.receiveMatching(isTest, 30_000);
      assert.ok(frame, `guest frame ${i}`);
      assert.equal(text(frame), `denovisor-frame-${i}`);
    }
    await exchange(0);
    await saveAndRestore(daemon, "net", join(daemon.dir, "net.state"));
    await waitAfterRestore(daemon, "net", 1, /(?:)/);
    for (let i = 1; i < 4; i++) await exchange(i);
    const after = await daemon.waitForLog("net", "virtio_net: all passed", LOG_WAIT_MS);
    assert.equal(after.split("virtio_net: start").length - 1, 1, after);
  } finally {
    await daemon.cleanup();
    await ip("link", "del", tap);
  }
});

kvmTest("daemon: the virtio console guest keeps echoing after a restore", async () => {
  const daemon = await TestDaemon.start();
  try {
    const type = async (line: string) => {
      const info = await daemon.info("vcon");
      const runDir = info.consoleSocket!.replace(/\/console\.sock$/, "");
      const console = await attachConsole(runDir, "rw");
      try {
        await console.conn.write(new TextEncoder().encode(`${line}\n`));
      } finally {
        console.conn.close();
      }
    };
    await daemon.run({
      name: "vcon",
      boot: { kernel: guest("virtio_console"), cmdline: "timeout=600" },
      memory: 32,
      console: "virtio",
    });
    await daemon.waitForLog("vcon", "virtio_console: ready", LOG_WAIT_MS);
    await type("before the save");
    await daemon.waitForLog("vcon", "vcon-echo: before the save", LOG_WAIT_MS);
    await saveAndRestore(daemon, "vcon", join(daemon.dir, "vcon.state"));
    await waitAfterRestore(daemon, "vcon", 1, /(?:)/);
    await type("after the restore");
    await waitAfterRestore(daemon, "vcon", 1, /vcon-echo: after the restore/);
    await type("quit");
    const text = await daemon.waitForLog("vcon", "virtio_console: all passed", LOG_WAIT_MS);
    assert.equal(text.split("virtio_console: ready").length - 1, 1, text);
  } finally {
    await daemon.cleanup();
  }
});
