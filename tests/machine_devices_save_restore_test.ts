/**
 * The in-process machine save/restore of issue 9 with every kind of device: a 2-vCPU
 * PVH guest (guests/domain.c: "tick N" about every 0.5 s, serial input by interrupt,
 * "disk" drives the first virtio-mmio block device) with virtio-blk on MMIO and on PCI, a
 * virtio-net on PCI (a tap), virtio-rng and a virtio console on MMIO. It runs, uses its
 * disk, is paused and saved, closed, and restored from the state into a second machine
 * built from the same config in the same process: the guest counts on without booting
 * again, and its disk driver, set up before the save, works on the restored device (the
 * host sees the sector it writes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { TextSink } from "./text_sink.ts";
import { Kvm } from "../core/kvm.ts";
import { build, loadBootImage, restore } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";

const NAME = "a 2-vCPU machine with blk, net, rng and console on PCI and MMIO is saved, " +
  "restored into a second machine and carries on, disk included";
const SECTOR = 512;
/** What guests/domain.c's "disk" command writes to sector 8. */
const WRITTEN = 0x5a;

function config(dir: string): VmmMachineConfig {
  return {
    vcpus: 2,
    memoryBytes: 64 * 1024 * 1024,
    boot: { kind: "linux", kernel: guest("domain"), cmdline: "transport=mmio" },
    disks: [
      {
        id: "root",
        path: join(dir, "root.raw"),
        format: "raw",
        readOnly: false,
        transport: "mmio",
      },
      { id: "data", path: join(dir, "data.raw"), format: "raw", readOnly: false, transport: "pci" },
    ],
    nics: [{ id: "net0", tap: "auto", mac: "52:54:00:9a:00:01", transport: "pci" }],
    rng: {},
    balloon: false,
    virtioConsole: true,
    // Where the rng and the virtio console sit.
    transport: "mmio",
  };
}

/** Types a line on the guest's serial port and waits for `reply`. */
async function command(machine: Machine, console: TextSink, line: string, reply: RegExp) {
  machine.serial.receive(new TextEncoder().encode(`${line}\n`));
  return await console.waitFor(reply, 60_000);
}

async function sector8(path: string): Promise<Uint8Array> {
  const file = await Deno.readFile(path);
  return file.subarray(8 * SECTOR, 9 * SECTOR);
}

async function test(): Promise<void> {
  using kvm = Kvm.open();
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "denovisor-devices-save-" });
  let restored: Machine | undefined;
  try {
    for (const disk of ["root.raw", "data.raw"]) {
      await Deno.writeFile(join(dir, disk), new Uint8Array(1024 * 1024));
    }
    const boot = await loadBootImage(config(dir).boot);
    const stateFile = join(dir, "machine.state");

    const first = new TextSink();
    const machine = build(config(dir), { kvm, console: first, boot });
    let lastTick: number;
    try {
      machine.start();
      await first.waitForTick(3, 60_000);
      await command(machine, first, "disk", /disk: (ok|failed.*)\r?\n/);
      assert.match(first.text, /disk: ok/);
      await machine.pause();
      lastTick = Math.max(...first.ticks());
      await saveMachine(machine, config(dir), kvm, { stateFile });
    } finally {
      machine.stop("saved");
      await machine.close();
    }
    // Undo the guest's write, so that only the restored device can write it again.
    const root = join(dir, "root.raw");
    assert.ok((await sector8(root)).every((byte) => byte === WRITTEN));
    const file = await Deno.open(root, { write: true });
    await file.seek(8 * SECTOR, Deno.SeekMode.Start);
    await file.write(new Uint8Array(SECTOR));
    file.close();

    const second = new TextSink();
    restored = await restore(config(dir), { stateFile }, { kvm, console: second, boot });
    restored.start();
    await second.waitForTick(lastTick + 3, 60_000);
    const ticks = second.ticks();
    assert.ok(ticks[0] > lastTick, `the count goes on from ${lastTick}: ${ticks.join(", ")}`);
    assert.ok(!second.text.includes("domain guest up"), `no second boot:\n${second.text}`);
    await command(restored, second, "disk", /disk: (ok|failed.*)\r?\n/);
    assert.match(second.text, /disk: ok/, second.text);
    assert.ok((await sector8(root)).every((byte) => byte === WRITTEN), "the restored disk wrote");
  } finally {
    restored?.stop("test over");
    await restored?.close();
    await Deno.remove(dir, { recursive: true });
  }
}

kvmTest(NAME, test, 300_000);
